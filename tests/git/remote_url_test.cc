// Remote URLs in messages: what RedactUrl hides and keeps, which URLs count as holding
// credentials, and the scrubbing of error text that quotes a URL.

#include <gtest/gtest.h>

#include "sources/git/remote.h"

namespace ballast::git {
namespace {

TEST(RemoteUrlTest, RedactsEveryFormOfSecret) {
  EXPECT_EQ(RedactUrl("https://bob:hunter2@example.com/org/repo.git"),
            "https://bob:***@example.com/org/repo.git");
  EXPECT_EQ(RedactUrl("http://bob:hunter2@example.com:8080/repo.git"),
            "http://bob:***@example.com:8080/repo.git");
  // A bare user part over http(s) is an access token.
  EXPECT_EQ(RedactUrl("https://ghp_TOKEN@example.com/org/repo.git"),
            "https://***@example.com/org/repo.git");
  EXPECT_EQ(RedactUrl("HTTPS://ghp_TOKEN@example.com/repo"), "HTTPS://***@example.com/repo");
  // An unescaped '@' in the password: all of it is hidden.
  EXPECT_EQ(RedactUrl("https://bob:pa@ss@example.com/repo"), "https://bob:***@example.com/repo");
  EXPECT_EQ(RedactUrl("https://bob:pa%40ss@example.com/repo"), "https://bob:***@example.com/repo");
  // ssh: the user name is no secret, a password is.
  EXPECT_EQ(RedactUrl("ssh://git@example.com:2222/repo.git"),
            "ssh://git@example.com:2222/repo.git");
  EXPECT_EQ(RedactUrl("ssh://git:pw@example.com/repo.git"), "ssh://git:***@example.com/repo.git");
  EXPECT_EQ(RedactUrl("git@example.com:org/repo.git"), "git@example.com:org/repo.git");
  EXPECT_EQ(RedactUrl("git:pw@example.com:org/repo.git"), "git:***@example.com:org/repo.git");
  // '@' in the path or query is not a user part.
  EXPECT_EQ(RedactUrl("https://example.com/a@b"), "https://example.com/a@b");
  EXPECT_EQ(RedactUrl("https://example.com?ref=a@b"), "https://example.com?ref=a@b");
  EXPECT_EQ(RedactUrl("git@example.com:team@x/repo.git"), "git@example.com:team@x/repo.git");
  EXPECT_EQ(RedactUrl("/srv/git/repo@v1.git"), "/srv/git/repo@v1.git");
  EXPECT_EQ(RedactUrl("file:///srv/git/repo.git"), "file:///srv/git/repo.git");
}

TEST(RemoteUrlTest, WhichUrlsHoldCredentials) {
  EXPECT_TRUE(UrlHasCredentials("https://bob:hunter2@example.com/repo"));
  EXPECT_TRUE(UrlHasCredentials("https://TOKEN@example.com/repo"));
  EXPECT_TRUE(UrlHasCredentials("ssh://git:pw@example.com/repo"));
  EXPECT_FALSE(UrlHasCredentials("https://example.com/repo"));
  EXPECT_FALSE(UrlHasCredentials("ssh://git@example.com/repo"));
  EXPECT_FALSE(UrlHasCredentials("git@example.com:repo"));
  EXPECT_FALSE(UrlHasCredentials("https://bob:@example.com/repo"));  // nothing to hide
  EXPECT_FALSE(UrlHasCredentials("/srv/git/repo.git"));
}

TEST(RemoteUrlTest, ScrubsTextThatQuotesTheUrl) {
  const std::string url = "https://bob:s%40cret@example.com/repo.git";
  EXPECT_EQ(RedactUrlSecrets("malformed URL '" + url + "'", url),
            "malformed URL 'https://bob:***@example.com/repo.git'");
  // The password alone, as written or decoded.
  EXPECT_EQ(RedactUrlSecrets("user bob password s@cret refused; s%40cret", url),
            "user bob password *** refused; ***");
  EXPECT_EQ(RedactUrlSecrets("nothing to hide", "https://example.com/repo"), "nothing to hide");
}

}  // namespace
}  // namespace ballast::git
