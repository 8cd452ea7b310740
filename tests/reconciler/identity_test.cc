// Who is calling (reconciler/identity.h): the token file as Kubernetes writes it, and what a
// mistake in it says; tokens presented as bearer or as Basic passwords; node credentials.

#include "reconciler/identity.h"

#include <gtest/gtest.h>

#include <set>

namespace ballast::reconciler {
namespace {

net::Request WithAuthorization(const std::string& value) {
  net::Request r;
  r.headers = {{"Authorization", value}};
  return r;
}

TEST(TokenFile, ReadsKubernetesStaticTokensWithRoles) {
  auto t = ParseTokenFile(
      "# operators\n"
      "a-t0ken,alice,1001,\"system:masters\"\n"
      "\n"
      "v-t0ken,victor,1002,\"devs,viewer\"\n"
      "n-t0ken,edge-1,1003,node\n",
      "tokens.csv");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Authenticator auth(std::move(*t), "", Role::kNone, nullptr);
  EXPECT_FALSE(auth.open());
  const Principal admin = auth.Authenticate(WithAuthorization("Bearer a-t0ken"));
  EXPECT_EQ(admin.role, Role::kAdmin);
  EXPECT_EQ(admin.user, "alice");
  EXPECT_EQ(auth.Authenticate(WithAuthorization("bearer v-t0ken")).role, Role::kViewer);
  const Principal node = auth.Authenticate(WithAuthorization("Bearer n-t0ken"));
  EXPECT_EQ(node.role, Role::kNode);
  EXPECT_EQ(node.node, "edge-1");
  EXPECT_EQ(auth.Authenticate(WithAuthorization("Bearer a-t0ke")).role, Role::kNone);
  EXPECT_EQ(auth.Authenticate(net::Request{}).role, Role::kNone);
}

TEST(TokenFile, OneBareTokenIsAnAdminAsBefore) {
  auto t = ParseTokenFile("  s3cret  \n", "token");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Authenticator auth(std::move(*t), "", Role::kNone, nullptr);
  EXPECT_EQ(auth.Authenticate(WithAuthorization("Bearer s3cret")).role, Role::kAdmin);
}

TEST(TokenFile, MistakesNameTheFileTheLineAndTheFieldButNeverTheToken) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ok,alice,1,admin\nbad-t0ken,bob,2,\"root\"\n", "tokens.csv:2: groups (field 4)"},
      {"bad-t0ken,bob\n", "tokens.csv:1: want token,user,uid"},
      {"bad-t0ken,bob,2,\"admin\n", "tokens.csv:1:"},
      {"bad-t0ken,,2,admin\n", "tokens.csv:1: user (field 2): empty"},
      {"same-t0ken,a,1,admin\nsame-t0ken,b,2,viewer\n", "tokens.csv:2: the token of user b"},
      {"# nothing\n\n", "tokens.csv: no tokens"},
  };
  for (const auto& [text, want] : cases) {
    auto t = ParseTokenFile(text, "tokens.csv");
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_NE(t.status().message().find(want), std::string::npos)
        << text << " -> " << t.status().message();
    EXPECT_EQ(t.status().message().find("t0ken"), std::string::npos) << t.status().message();
  }
}

TEST(PresentedToken, BearerOrTheBasicPassword) {
  EXPECT_EQ(PresentedToken(WithAuthorization("Bearer abc")), "abc");
  // "alice:s3:cret" — the password may hold a colon.
  EXPECT_EQ(PresentedToken(WithAuthorization("Basic YWxpY2U6czM6Y3JldA==")), "s3:cret");
  EXPECT_EQ(PresentedToken(WithAuthorization("Basic bm9jb2xvbg==")), "");  // "nocolon"
  EXPECT_EQ(PresentedToken(WithAuthorization("Basic !!!!")), "");
  EXPECT_EQ(PresentedToken(WithAuthorization("Digest x")), "");
  EXPECT_EQ(PresentedToken(WithAuthorization("Bearer")), "");
}

TEST(Authenticator, OpenOnlyWhenNothingIsConfigured) {
  Authenticator open(TokenTable{}, "", Role::kNone, nullptr);
  EXPECT_TRUE(open.open());
  EXPECT_EQ(open.Authenticate(net::Request{}).role, Role::kAdmin);
  Authenticator joined(TokenTable{}, "j0in", Role::kViewer, nullptr);
  EXPECT_FALSE(joined.open());
  EXPECT_EQ(joined.Authenticate(net::Request{}).role, Role::kViewer);
  EXPECT_EQ(joined.Authenticate(WithAuthorization("Bearer j0in")).role, Role::kJoiner);
}

// Verified client certificates, read as Kubernetes reads them: organizations are groups, the
// common name the user (a node's name, with or without "system:node:").
TEST(Authenticator, ClientCertificatesAsKubernetesReadsThem) {
  auto cert = [](std::string cn, std::vector<std::string> orgs) {
    net::Request r;
    r.peer_certificate = net::PeerCertificate{std::move(cn), std::move(orgs)};
    return r;
  };
  Authenticator auth(TokenTable{}, "", Role::kNone, nullptr, /*client_certificates=*/true);
  EXPECT_FALSE(auth.open()) << "client certificates are credentials";
  EXPECT_EQ(auth.Authenticate(net::Request{}).role, Role::kNone);
  const Principal node = auth.Authenticate(cert("system:node:edge-1", {"system:nodes"}));
  EXPECT_EQ(node.role, Role::kNode);
  EXPECT_EQ(node.node, "edge-1");
  EXPECT_EQ(auth.Authenticate(cert("edge-2", {"node"})).node, "edge-2");
  EXPECT_EQ(auth.Authenticate(cert("system:node:", {"system:nodes"})).role, Role::kNone);
  EXPECT_EQ(auth.Authenticate(cert("alice", {"devs", "system:masters"})).role, Role::kAdmin);
  EXPECT_EQ(auth.Authenticate(cert("victor", {"viewer"})).role, Role::kViewer);
  EXPECT_EQ(auth.Authenticate(cert("eve", {"devs"})).role, Role::kNone);
  // An organization with a comma is not split into groups.
  EXPECT_EQ(auth.Authenticate(cert("eve", {"devs,admin"})).role, Role::kNone);
  // Organizations compare exactly, as Kubernetes compares groups.
  EXPECT_EQ(auth.Authenticate(cert("eve", {" admin "})).role, Role::kNone);
  EXPECT_EQ(auth.Authenticate(cert("eve", {"Admin"})).role, Role::kNone);
  EXPECT_EQ(auth.Authenticate(cert("", {"admin"})).role, Role::kNone);
  // A token, when presented, decides.
  net::Request both = cert("alice", {"admin"});
  both.headers = {{"Authorization", "Bearer wr0ng"}};
  EXPECT_EQ(auth.Authenticate(both).role, Role::kNone);
}

TEST(NodeCredentials, EachBoundToOneNodeRevokedByTheNextAndBounded) {
  NodeCredentials nodes(/*max_nodes=*/2);
  auto a1 = nodes.Issue("a");
  ASSERT_TRUE(a1.ok());
  EXPECT_EQ(a1->credential.size(), 64u);
  EXPECT_NE(a1->credential, a1->logs_token);
  EXPECT_EQ(nodes.NodeOf(a1->credential), "a");
  EXPECT_EQ(nodes.NodeOf(a1->logs_token), std::nullopt);
  auto a2 = nodes.Issue("a");
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(nodes.NodeOf(a1->credential), std::nullopt) << "the old credential still works";
  EXPECT_EQ(nodes.NodeOf(a2->credential), "a");
  EXPECT_EQ(nodes.LogsToken("a"), a2->logs_token);
  ASSERT_TRUE(nodes.Issue("b").ok());
  EXPECT_FALSE(nodes.Issue("c").ok());
  EXPECT_TRUE(nodes.Issue("b").ok()) << "a node holding one may always renew it";

  Authenticator auth(TokenTable{}, "j0in", Role::kNone, &nodes);
  const Principal who = auth.Authenticate(WithAuthorization("Bearer " + a2->credential));
  EXPECT_EQ(who.role, Role::kNode);
  EXPECT_EQ(who.node, "a");
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(RandomToken());
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace ballast::reconciler
