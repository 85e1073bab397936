// Command etcd is the etcd server, built from its Go module (the test cluster's datastore).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
