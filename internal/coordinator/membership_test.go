package coordinator

import (
	"slices"
	"strings"
	"testing"

	pb "ringtrain/proto"
)

func TestMembershipRefusesDuplicatesAndExtras(t *testing.T) {
	ms := newMembership(2)
	if _, err := ms.add(&pb.JoinRequest{WorkerId: "a", RingAddr: "x:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.add(&pb.JoinRequest{WorkerId: "a", RingAddr: "x:2"}); err == nil || !strings.Contains(err.Error(), `"a" has already joined`) {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := ms.add(&pb.JoinRequest{WorkerId: "b", RingAddr: "x:3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.add(&pb.JoinRequest{WorkerId: "c", RingAddr: "x:4"}); err == nil || !strings.Contains(err.Error(), "already has its 2 workers") {
		t.Fatalf("third worker in a ring of two: %v", err)
	}
}

func TestRanksFollowNaturalIDOrder(t *testing.T) {
	ids := []string{"worker-10", "worker-2", "worker-1", "local-0"}
	ms := newMembership(len(ids))
	for _, id := range ids {
		if _, err := ms.add(&pb.JoinRequest{WorkerId: id, RingAddr: id + ":1"}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, m := range ms.assign() {
		got = append(got, m.id)
	}
	if want := []string{"local-0", "worker-1", "worker-2", "worker-10"}; !slices.Equal(got, want) {
		t.Fatalf("rank order %v, want %v", got, want)
	}
}
