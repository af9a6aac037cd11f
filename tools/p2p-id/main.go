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
// Usage: iotex-p2p-id < keys   (one master key per line; prints one peer ID per line, in order).
// Keys come on stdin, never as arguments, so they do not show in the process list.
package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand"
	"os"
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
