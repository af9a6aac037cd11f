module iotex-toolkit/p2p-id

go 1.24
