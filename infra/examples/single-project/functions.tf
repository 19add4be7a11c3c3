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
        "appengine.versions.get",        # re-read the App Engine version the audit entry names
        "cloudfunctions.functions.get",  # re-read the Cloud Function the audit entry names (1st or 2nd gen)
        "compute.addresses.use",         # attach the static addresses the policy names to the NAT (GUESS, see permissions.yaml)
        "compute.regionOperations.get",  # wait for the router insert/patch to finish (operations.wait)
        "compute.regionOperations.list", # before verifying a patch: router operations still running
        "compute.routers.create",        # create {prefix}-{region} with its NAT in one insert
        "compute.routers.get",           # routers.patch checks get as well as update (docs)
        "compute.routers.list",          # find the routers (and NATs) of the region
        "compute.routers.update",        # add the NAT to an existing router (routers.patch)
        "compute.subnetworks.get",       # read the connector's or Direct VPC interface's subnet
        "compute.subnetworks.list",      # drift: the subnets of a changed router's region, one list
        "run.jobs.get",                  # re-read the Cloud Run job the audit entry names
        "run.services.get",              # re-read the Cloud Run service the audit entry names
        "run.workerpools.get",           # re-read the Cloud Run worker pool the audit entry names
        "vpcaccess.connectors.get",      # read the connector: network, region, subnet or range
        "vpcaccess.connectors.list",     # drift: re-check the connectors of a changed router's region
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
        "compute.firewalls.delete",      # remove a managed rule the policy no longer wants (never another rule)
        "compute.firewalls.get",         # firewalls.patch checks get as well as update (docs)
        "compute.firewalls.list",        # find the connector's aet-* rules and the managed ones
        "compute.firewalls.update",      # disable aet-*-sbntfw/tagfw, put drifted managed rules back
        "compute.globalOperations.get",  # wait for firewall operations to finish (operations.wait)
        "compute.networks.updatePolicy", # any firewall insert/patch/update/delete on the network needs it
        "compute.subnetworks.get",       # read the connector subnet's network
        "vpcaccess.connectors.get",      # read the connector the event names
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
