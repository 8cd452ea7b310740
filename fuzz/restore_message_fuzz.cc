// The message of a commit in the manifest repository: ballast reads every new commit's message
// to tell its own rollback commits ("restore" entries) from a user's. Any bytes parse or not,
// never crash; what parses formats back to a message that parses to the same entry.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sources/git/restore_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto message = ballast::git::RestoreMessage::Parse(text);
  if (!message) return 0;
  (void)message->automatic();
  auto again = ballast::git::RestoreMessage::Parse(message->Format());
  if (!again || again->entry_id != message->entry_id) __builtin_trap();
  return 0;
}
