package coordinator

import (
	"slices"
	"strings"
	"testing"

	pb "ringtrain/proto"
)

func TestRegistryRefusesLiveDuplicates(t *testing.T) {
	rg := newRegistry()
	a, err := rg.add(&pb.JoinRequest{WorkerId: "a", RingAddr: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rg.add(&pb.JoinRequest{WorkerId: "a", RingAddr: "x:2"}); err == nil || !strings.Contains(err.Error(), `"a" has already joined`) {
		t.Fatalf("live duplicate id: %v", err)
	}
	a.ended.Store(true) // its stream ended: a restarted worker may take the id
	b, err := rg.add(&pb.JoinRequest{WorkerId: "a", RingAddr: "x:3"})
	if err != nil {
		t.Fatal(err)
	}
	rg.remove(a) // the old one's removal must not drop the new one
	if rg.get("a") != b {
		t.Fatal("removing the old worker removed its successor")
	}
}

func TestRegistryListsInNaturalOrder(t *testing.T) {
	rg := newRegistry()
	for _, id := range []string{"worker-10", "worker-2", "worker-1", "local-0"} {
		if _, err := rg.add(&pb.JoinRequest{WorkerId: id, RingAddr: id + ":1"}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, m := range rg.all() {
		got = append(got, m.id)
	}
	if want := []string{"local-0", "worker-1", "worker-2", "worker-10"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}
