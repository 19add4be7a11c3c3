# The three guardrail functions, one module call each (main.tf). Literal values only: the
# permission lists are checked against infra/permissions.yaml + infra/function-methods.yaml by
# tests/infra/test_iam.py, and the service account ids feed the sink's self-exclusion, which
# localcloud/infra_sink.py renders from this file.

locals {
  functions = {
    ensure_nat = {
      description        = "Makes sure the network and region a serverless workload egresses through has a Cloud NAT that covers it."
      entry_point        = "ensure_nat"
      service_account_id = "egress-guard-nat"
      trigger            = "audit"
      publishes_findings = true
      uses_slack         = false
      permissions = [
        "compute.addresses.get",        # resolve the static NAT addresses the policy names
        "compute.addresses.use",        # attach those addresses to the NAT (GUESS, see permissions.yaml)
        "compute.networks.get",         # resolve the workload's network
        "compute.regionOperations.get", # wait for the router insert/patch to finish
        "compute.routers.create",       # create {prefix}-{region} with its NAT in one insert
        "compute.routers.get",          # re-read a router before the read-modify-write of nats
        "compute.routers.list",         # find the routers (and NATs) of the network and region
        "compute.routers.update",       # add the NAT to an existing router (routers.patch)
        "compute.subnetworks.get",      # read the connector's or Direct VPC interface's subnet
        "run.jobs.get",                 # re-read the Cloud Run job the audit entry names
        "run.services.get",             # re-read the Cloud Run service the audit entry names
        "vpcaccess.connectors.get",     # read the connector: network, region, subnet or range
      ]
    }
    replace_connector_firewalls = {
      description        = "Replaces the broad firewall rules of a Serverless VPC Access connector with narrow, tagged rules egress-guard manages."
      entry_point        = "replace_connector_firewalls"
      service_account_id = "egress-guard-firewalls"
      trigger            = "audit"
      publishes_findings = true
      uses_slack         = false
      permissions = [
        "compute.firewalls.create",      # insert the managed deny/allow rules
        "compute.firewalls.get",         # re-read a rule before changing it (and for patch)
        "compute.firewalls.list",        # find the connector's aet-* rules and the managed ones
        "compute.firewalls.update",      # disable aet-*-sbntfw/tagfw, put drifted managed rules back
        "compute.globalOperations.get",  # wait for firewall operations to finish
        "compute.networks.get",          # resolve the connector's network
        "compute.networks.updatePolicy", # any firewall insert/patch/update on the network needs it
        "compute.subnetworks.get",       # read the connector subnet's range
        "vpcaccess.connectors.get",      # read the connector the event names
        "vpcaccess.connectors.list",     # find the connector behind an aet-* rule (drift events)
      ]
    }
    notify_slack = {
      description        = "Posts every egress-guard decision to Slack."
      entry_point        = "notify_slack"
      service_account_id = "egress-guard-slack"
      trigger            = "findings"
      publishes_findings = false
      uses_slack         = true
      # No Google API call: its only secret comes through a secret environment variable.
      permissions = []
    }
  }
}
