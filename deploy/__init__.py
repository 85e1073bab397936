"""Deployment assets of Gridlease: the Helm chart (helm/), its dashboards as code (dashboards/)
and the test cluster's build (testcluster/)."""
