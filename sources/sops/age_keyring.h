#pragma once

// The reconciler's age identity, for SOPS files (model/sops.h): a file's data key is wrapped
// for each of its age recipients; `age --decrypt` with the identity file unwraps it. Debian's
// `age` does the cryptography (X25519, the age format); ballast only runs it.
//
// The identity file is opened once (no symlink as its last component; a regular file, owned by
// this process's user or root, readable by no one else, as ssh wants a private key) and handed
// to every `age` by descriptor (/dev/fd/3), so replacing the path afterwards changes nothing. Its
// recipients (`age-keygen -y`) name what it opens in every error; a stanza for another recipient
// is never given to `age`. Unwrapped keys are cached by the wrapped text, and failures apart
// (so a flood of bad stanzas cannot evict good keys): one `age` per distinct stanza. `age` and
// `age-keygen` are found once, in PATH's absolute directories; each runs with the identity as
// descriptor 3, no other descriptor of this process, and PATH as its whole environment.
//
// Thread-safe: files are parsed in parallel.

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "localfs/safe_fs.h"
#include "model/sops.h"

namespace ballast::sops {

struct AgeOptions {
  std::string age = "age";  // a name found in PATH's absolute entries, or a path
  std::string age_keygen = "age-keygen";
  int timeout_ms = 10'000;  // per run
};

class AgeKeyring : public model::SopsKeyring {
 public:
  // InvalidArgument naming `identity_file` when it is missing, not private, or holds no age
  // identity; Unavailable when `age` cannot be run.
  static Result<std::unique_ptr<AgeKeyring>> Open(const std::string& identity_file,
                                                  AgeOptions options = {});

  Result<std::string> DataKey(const std::vector<model::SopsAgeStanza>& stanzas) const override;

  // The age recipients (public keys) of the identities in the file.
  const std::vector<std::string>& recipients() const { return recipients_; }

 private:
  AgeKeyring(std::string path, localfs::UniqueFd fd, AgeOptions options)
      : path_(std::move(path)), fd_(std::move(fd)), options_(std::move(options)) {}

  std::string path_;
  localfs::UniqueFd fd_;
  AgeOptions options_;
  std::vector<std::string> recipients_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::string> keys_;  // wrapped text -> data key
  mutable std::map<std::string, Status> failures_;   // wrapped text -> why age refused it
  mutable std::deque<std::chrono::steady_clock::time_point> recent_failures_;  // runs that failed
};

}  // namespace ballast::sops
