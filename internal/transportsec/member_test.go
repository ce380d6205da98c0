package transportsec

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestMemberCredentials: a credential proves the id it was issued for, to
// the issuer only; a tampered one, one naming another worker, one of
// another coordinator and none at all are refused, and the refusal says
// nothing but what to do.
func TestMemberCredentials(t *testing.T) {
	m, other := NewMembers(), NewMembers()
	in := func(vals ...string) context.Context {
		md := metadata.MD{}
		for _, v := range vals {
			md.Append(MemberHeader, v)
		}
		return metadata.NewIncomingContext(context.Background(), md)
	}
	for _, id := range []string{"w-0", "pod/ringtrain-worker-3", "é.x"} {
		got, err := m.Verify(in(m.Issue(id)))
		if err != nil || got != id {
			t.Errorf("Verify(Issue(%q)) = %q, %v", id, got, err)
		}
	}
	good := m.Issue("w-0")
	idPart, macPart, _ := strings.Cut(good, ".")
	impostor := m.Issue("w-1")
	_, impostorMAC, _ := strings.Cut(impostor, ".")
	for name, ctx := range map[string]context.Context{
		"none":                 context.Background(),
		"empty":                in(""),
		"two":                  in(good, impostor),
		"no mac":               in(idPart),
		"mac flipped":          in(idPart + "." + strings.Map(func(r rune) rune { return r ^ 1 }, macPart)),
		"another worker's mac": in(idPart + "." + impostorMAC),
		"another coordinator":  in(other.Issue("w-0")),
		"not base64":           in("!!." + macPart),
	} {
		id, err := m.Verify(ctx)
		if status.Code(err) != codes.Unauthenticated || id != "" {
			t.Errorf("%s: Verify = %q, %v; want Unauthenticated", name, id, err)
		}
	}
}

// TestExposure: only a server beyond loopback without a token or TLS is
// warned about, loudly unless -insecure made it a choice, naming its risk.
func TestExposure(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7070}
	any := &net.TCPAddr{IP: net.IPv6unspecified, Port: 7070}
	lan := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 7070}
	for _, c := range []struct {
		name       string
		s          Security
		addr       net.Addr
		warn, loud bool
	}{
		{"loopback", Security{}, loop, false, false},
		{"all interfaces", Security{}, any, true, true},
		{"LAN", Security{}, lan, true, true},
		{"LAN with a token", Security{Token: "t"}, lan, false, false},
		{"LAN, insecure by choice", Security{Insecure: true}, lan, true, false},
	} {
		msg, loud := c.s.Exposure(c.addr, CoordinatorRisk)
		if (msg != "") != c.warn || loud != c.loud {
			t.Errorf("%s: Exposure = %q, loud %v", c.name, msg, loud)
		}
		if c.loud && (!strings.Contains(msg, "ANYONE WHO REACHES THIS PORT CAN JOIN") || !strings.Contains(msg, "-insecure")) {
			t.Errorf("%s: the warning %q does not say who can join and how to choose", c.name, msg)
		}
	}
	if msg, loud := (&Security{}).Exposure(lan, RingRisk); !loud || !strings.Contains(msg, "LEARNS THE JOB'S ID CAN FEED THIS WORKER") {
		t.Errorf("a worker's ring port: %q", msg)
	}
}

// TestFillLocalIsSecureByDefault: a local run without secrets gets a fresh
// random token and gossip key; secrets the user gave are kept.
func TestFillLocalIsSecureByDefault(t *testing.T) {
	var a, b Security
	if got := a.FillLocal(); len(got) != 2 {
		t.Errorf("FillLocal generated %v, want a token and a gossip key", got)
	}
	b.FillLocal()
	if err := a.Load(); err != nil {
		t.Fatal(err)
	}
	if a.Token == "" || a.Token == b.Token || a.GossipKey == b.GossipKey || len(a.GossipKeyBytes()) != 32 {
		t.Errorf("tokens %q and %q, gossip keys %q and %q: want fresh random ones", a.Token, b.Token, a.GossipKey, b.GossipKey)
	}
	given := Security{Token: "mine", GossipKey: a.GossipKey}
	if got := given.FillLocal(); len(got) != 0 || given.Token != "mine" || given.GossipKey != a.GossipKey {
		t.Errorf("FillLocal replaced the user's secrets: generated %v", got)
	}
}
