// Command iotex-p2p-id prints the libp2p peer ID that iotex-server derives from a network.masterKey.
//
// Why it exists: a node's bootstrap list needs each peer's ID (/dns4/host/tcp/4689/p2p/<ID>), and an
// IoTeX node derives its ID from its masterKey (by default its producer key) through Go's math/rand,
// which nothing outside Go reproduces. The chart's P2P init container and scripts/iotex-cluster.sh run
// this to write bootstrap lists from the keys alone, before any node is up.
//
// The derivation is go-p2p's generateKeyPair: seed = SHA-1(masterKey)[12:20] as a big-endian int64
// with its top byte cleared; math/rand seeded with it supplies the 32-byte ed25519 seed; the peer ID is
// the identity multihash of the protobuf-encoded public key, in base58btc.
//
// Usage:
//
//	iotex-p2p-id < keys
//	    one master key per line on stdin; prints one peer ID per line, in order. Keys come on stdin or
//	    from files, never as arguments, so they do not show in the process list.
//	iotex-p2p-id bootstrap -peers FILE -keys DIR -self NAME [-role ROLE] -out FILE
//	    what the chart's P2P init container runs: FILE lists the bootstrap peers, one "NAME ADDRESS"
//	    per line (ADDRESS a multiaddr without /p2p, e.g. /dns4/bootnode/tcp/4689); DIR holds each
//	    peer's master key in a file named NAME. Writes a config overlay for iotex-server's
//	    -secret-path with network.bootstrapNodes = every peer but NAME, each with /p2p/<ID>.
package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// peerID returns the peer ID of the node whose network.masterKey is masterKey.
func peerID(masterKey string) (string, error) {
	sum := sha1.Sum([]byte(masterKey))
	seedBytes := sum[12:]
	seedBytes[0] = 0
	seed := int64(binary.BigEndian.Uint64(seedBytes))
	//nolint:gosec // the node derives its identity from math/rand; matching it is the point.
	pub, _, err := ed25519.GenerateKey(rand.New(rand.NewSource(seed)))
	if err != nil {
		return "", err
	}
	// libp2p's PublicKey protobuf: field 1 (Type) = 1 (Ed25519), field 2 (Data) = the 32 key bytes.
	key := append([]byte{0x08, 0x01, 0x12, byte(len(pub))}, pub...)
	// Keys of 42 bytes or fewer are inlined as an identity multihash (code 0x00, then the length).
	mh := append([]byte{0x00, byte(len(key))}, key...)
	return base58(mh), nil
}

const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58 encodes b in the Bitcoin alphabet that libp2p peer IDs use; leading zero bytes become '1'.
func base58(b []byte) string {
	n := new(big.Int).SetBytes(b)
	radix, mod := big.NewInt(58), new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, radix, mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bootstrap" {
		if err := bootstrap(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "iotex-p2p-id bootstrap: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: iotex-p2p-id < keys | iotex-p2p-id bootstrap -peers FILE -keys DIR -self NAME -out FILE")
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	line, printed := 0, 0
	for in.Scan() {
		line++
		key := strings.TrimSpace(in.Text())
		if key == "" {
			continue
		}
		id, err := peerID(key)
		if err != nil {
			fmt.Fprintf(os.Stderr, "iotex-p2p-id: line %d: %v\n", line, err)
			os.Exit(1)
		}
		fmt.Println(id)
		printed++
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "iotex-p2p-id: reading stdin: %v\n", err)
		os.Exit(1)
	}
	if printed == 0 {
		fmt.Fprintln(os.Stderr, "iotex-p2p-id: no master key on stdin (one per line)")
		os.Exit(2)
	}
}

// A peer name is a pod name (bootnode-0, delegate-2): it names a key file, so no path characters.
var peerName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// A bootstrap address before its /p2p part: /dns4|/ip4|/ip6/<host>/tcp/<port>.
var peerAddr = regexp.MustCompile(`^/(dns4|dns6|dns|ip4|ip6)/[A-Za-z0-9.:-]+/tcp/[0-9]{1,5}$`)

// bootstrap writes the -secret-path overlay that gives a node its bootstrap list.
func bootstrap(args []string) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	peers := fs.String("peers", "", "file of \"NAME ADDRESS\" lines")
	keys := fs.String("keys", "", "directory with one master-key file per peer NAME")
	self := fs.String("self", "", "this node's NAME (left out of its own list: a node that dials only itself waits forever)")
	role := fs.String("role", "", "with -self POD_NAME: NAME is ROLE-<the pod's ordinal> (StatefulSet pod <sts>-7 -> ROLE-7)")
	out := fs.String("out", "", "overlay file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *peers == "" || *keys == "" || *self == "" || *out == "" {
		return errors.New("-peers, -keys, -self and -out are all required")
	}
	if *role != "" {
		i := strings.LastIndexByte(*self, '-')
		if i < 0 || i == len(*self)-1 {
			return fmt.Errorf("-self %q is not a StatefulSet pod name (<name>-<ordinal>)", *self)
		}
		*self = *role + (*self)[i:]
	}
	text, err := os.ReadFile(*peers)
	if err != nil {
		return err
	}
	var list []string
	for n, line := range strings.Split(string(text), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 2 || !peerName.MatchString(fields[0]) || !peerAddr.MatchString(fields[1]) {
			return fmt.Errorf("%s:%d: want \"NAME /dns4|ip4/HOST/tcp/PORT\", got %q", *peers, n+1, line)
		}
		if fields[0] == *self {
			continue
		}
		key, err := os.ReadFile(filepath.Join(*keys, fields[0]))
		if err != nil {
			return fmt.Errorf("master key of peer %s: %w", fields[0], err)
		}
		if strings.TrimSpace(string(key)) == "" {
			return fmt.Errorf("master key of peer %s is empty", fields[0])
		}
		id, err := peerID(strings.TrimSpace(string(key)))
		if err != nil {
			return err
		}
		list = append(list, fields[1]+"/p2p/"+id)
	}
	if len(list) == 0 {
		return fmt.Errorf("%s names no peer other than %s: the node would have nobody to dial", *peers, *self)
	}
	var b strings.Builder
	b.WriteString("# Written by iotex-p2p-id bootstrap: the peers this node dials first.\nnetwork:\n  bootstrapNodes:\n")
	for _, a := range list {
		fmt.Fprintf(&b, "    - %q\n", a)
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}
