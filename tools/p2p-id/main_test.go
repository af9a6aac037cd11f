package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

func TestBootstrapLeavesSelfOutAndRefusesBadLines(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]string{"bootnode-0": "bootnode", "delegate-0": "d0"} {
		if err := os.WriteFile(filepath.Join(keys, name), []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	peers := filepath.Join(dir, "peers")
	out := filepath.Join(dir, "overlay.yaml")
	write := func(s string) {
		if err := os.WriteFile(peers, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bootnode-0 /dns4/bootnode/tcp/4689\ndelegate-0 /ip4/127.0.0.1/tcp/4690\n")
	if err := bootstrap([]string{"-peers", peers, "-keys", keys, "-self", "delegate-0", "-out", out}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if err := bootstrap([]string{"-peers", peers, "-keys", keys, "-self", "rel-delegate-0", "-role", "delegate", "-out", out}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(out); string(again) != string(got) {
		t.Fatalf("-self POD -role delegate wrote %q, want the same as -self delegate-0: %q", again, got)
	}
	want := "/dns4/bootnode/tcp/4689/p2p/12D3KooWJwW6pUpTkxPTMv84RPLPMQVEAjZ6fvJuX4oZrvW5DAGQ"
	if !strings.Contains(string(got), want) || strings.Contains(string(got), "4690") {
		t.Fatalf("overlay for delegate-0 = %q; want only the boot node (%s)", got, want)
	}
	for _, bad := range []string{
		"bootnode-0 /dns4/bootnode/tcp/4689/p2p/x\n", // already has a /p2p part
		"../etc/passwd /ip4/1.2.3.4/tcp/1\n",         // a name that is a path
		"bootnode-0\n",                               // no address
		"delegate-0 /ip4/127.0.0.1/tcp/4690\n",       // nobody but self
		"delegate-9 /ip4/127.0.0.1/tcp/4690\n",       // no key file
	} {
		write(bad)
		if err := bootstrap([]string{"-peers", peers, "-keys", keys, "-self", "delegate-0", "-out", out}); err == nil {
			t.Errorf("peers %q: accepted, want an error", bad)
		}
	}
}
