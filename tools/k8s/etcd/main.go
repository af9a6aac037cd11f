// Command etcd is etcd's own server entry point, built from the published go.etcd.io/etcd/server/v3
// module. That module's go.mod replaces its sibling modules with relative paths, so `go install` refuses
// it; a main of our own in a module of our own is the smallest way to build the pinned server.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
