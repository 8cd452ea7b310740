#include "reconciler/api_bodies.h"

#include <string>

namespace ballast::reconciler {
namespace {

using model::Json;

// A value as an error message shows it: at most 64 bytes of its JSON.
std::string Shown(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 64) text = text.substr(0, 61) + "...";
  return text;
}

// An optional boolean member: absent or null gives `fallback`; any other type is an error
// naming the field.
Result<bool> BoolField(const Json& body, const char* name, bool fallback) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return InvalidArgument(std::string(name) + ": must be true or false, not " + Shown(*it));
  }
  return it->get<bool>();
}

// The body as a JSON object; an empty body is `{}` when `empty_ok`.
Result<Json> ObjectBody(const net::Request& req, bool empty_ok) {
  if (req.body.empty() && empty_ok) return Json::object();
  auto body = net::ParseJsonBody(req);
  if (!body.ok()) return body.status();
  if (!body->is_object()) return InvalidArgument("body: must be a JSON object");
  return body;
}

}  // namespace

Result<SyncBody> ParseSyncBody(const net::Request& request) {
  auto body = ObjectBody(request, /*empty_ok=*/true);
  if (!body.ok()) return body.status();
  auto dry_run = BoolField(*body, "dryRun", false);
  if (!dry_run.ok()) return dry_run.status();
  return SyncBody{*dry_run};
}

Result<RollbackBody> ParseRollbackBody(const net::Request& request) {
  auto body = ObjectBody(request, /*empty_ok=*/false);
  if (!body.ok()) return body.status();
  auto id = body->find("id");
  if (id == body->end() || !id->is_number_integer() || id->get<int64_t>() <= 0) {
    return InvalidArgument("id: must be a history entry id (a positive integer)");
  }
  auto pin = BoolField(*body, "pin", false);
  if (!pin.ok()) return pin.status();
  return RollbackBody{id->get<int64_t>(), *pin};
}

}  // namespace ballast::reconciler
