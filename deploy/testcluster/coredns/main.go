// A CoreDNS server with only the plugins the test cluster's Corefile uses (written by
// services/devstack/cluster.py): bind (the node's address), kubernetes (cluster.local from the
// API server), forward (everything else to the host's resolvers), cache, errors, health, ready,
// loadbalance. CoreDNS registers a plugin in its package's init, so importing only these builds
// a binary with far fewer dependencies than the full `coredns` command (no cloud DNS SDKs).
package main

import (
	_ "github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
