package main

import "testing"

// The vector is iotex-core's own: tools/minicluster gives the master key "bootnode" this peer ID.
func TestPeerIDMatchesIotexCore(t *testing.T) {
	got, err := peerID("bootnode")
	if err != nil {
		t.Fatal(err)
	}
	if want := "12D3KooWJwW6pUpTkxPTMv84RPLPMQVEAjZ6fvJuX4oZrvW5DAGQ"; got != want {
		t.Fatalf("peerID(bootnode) = %s, want %s", got, want)
	}
}

func TestBase58LeadingZeros(t *testing.T) {
	if got := base58([]byte{0, 0, 1}); got != "112" {
		t.Fatalf("base58(00 00 01) = %q, want 112", got)
	}
}
