// The wrapper for iotex-core v2.4.4, the version the Real IoTeX issue asked for. The Go module proxy
// this project builds from refuses github.com/envestcc/erigon (and its nested erigon-lib) at
// v0.0.0-20251229032433-18f245cc374a with 403 "This module version is not available", so this version
// cannot be built here and there is no go.sum: `IOTEX_VERSION=v2.4.4 scripts/install-iotex.sh` tries it
// and names the refused module. The nine replace lines are v2.4.4's own (go.mod L338-355).
module iotex-toolkit/iotex-node

go 1.24.6

require github.com/iotexproject/iotex-core/v2 v2.4.4

tool github.com/iotexproject/iotex-core/v2/server

replace github.com/ethereum/go-ethereum => github.com/iotexproject/go-ethereum v1.7.4-0.20260114032628-a8ad6229e289

replace golang.org/x/xerrors => golang.org/x/xerrors v0.0.0-20190212162355-a5947ffaace3

replace github.com/iotexproject/go-pkgs => github.com/iotexproject/go-pkgs v0.1.16-0.20250813094138-d89b145b833c

replace github.com/erigontech/erigon => github.com/envestcc/erigon v0.0.0-20251229032433-18f245cc374a

replace github.com/erigontech/erigon-lib => github.com/envestcc/erigon/erigon-lib v0.0.0-20251229032433-18f245cc374a

replace github.com/gballet/go-verkle => github.com/envestcc/go-verkle v0.0.0-20251216081422-a9d13963495d

replace github.com/erigontech/erigon-snapshot => github.com/ledgerwatch/erigon-snapshot v1.3.1-0.20240805114253-42da880260bb

replace github.com/ethereum/go-ethereum/crypto/secp256k1 => github.com/erigontech/secp256k1 v1.1.0

replace github.com/anacrolix/go-libutp => github.com/anacrolix/go-libutp v0.0.0-20251121015447-f294e5ed5b4d
