# egress-guard sweep --organization on a schedule: a Cloud Run job runs the command, Cloud Scheduler
# starts it. The job runs as its own service account, whose custom role, granted at the organization
# (the sweep reads and writes every project in it), holds exactly the permissions the command calls:
# tests/infra/test_iam.py checks the list below against infra/permissions.yaml and the
# runners.sweep_organization methods of infra/function-methods.yaml, and
# tests/contract/test_sweep_organization.py those methods against localcloud's call log.

locals {
  permissions = [
    "appengine.services.list",              # the services of a project's App Engine app
    "appengine.versions.list",              # their versions: connector and egress setting
    "cloudasset.assets.searchAllResources", # discovery: one search of the organization
    "cloudfunctions.functions.list",        # a project's functions, for their egress
    "compute.addresses.use",                # routers.insert/patch with the policy's static addresses (GUESS, permissions.yaml)
    "compute.firewalls.create",             # insert a connector's managed deny/allow rules
    "compute.firewalls.delete",             # remove a managed rule the policy no longer wants
    "compute.firewalls.get",                # firewalls.patch checks get as well as update (docs)
    "compute.firewalls.list",               # every rule of a network project, one list
    "compute.firewalls.update",             # disable aet-*-sbntfw/tagfw, put drifted managed rules back
    "compute.globalOperations.get",         # wait for firewall operations (operations.wait)
    "compute.networks.updatePolicy",        # any firewall write on the network needs it
    "compute.regionOperations.get",         # wait for router operations (operations.wait)
    "compute.routers.create",               # create a router with its NAT in one insert
    "compute.routers.get",                  # routers.patch checks get as well as update (docs)
    "compute.routers.list",                 # routers of a network project (aggregated), re-read after a write
    "compute.routers.update",               # add a subnet or a NAT to a router (routers.patch)
    "compute.subnetworks.list",             # every subnet of a network project (aggregated)
    "run.jobs.list",                        # a project's Cloud Run jobs, for their egress
    "run.services.list",                    # a project's Cloud Run services, for their egress
    "vpcaccess.connectors.list",            # a project's connectors, region by region
    "vpcaccess.locations.list",             # the regions, when the search found no connector to say them
  ]
  args = concat(
    ["sweep", "--organization", var.organization_id, "--json", "--projects-at-once", tostring(var.projects_at_once)],
    var.dry_run ? ["--dry-run"] : [],
    var.findings_topic == null ? [] : ["--publish"],
  )
  policy_mount = "/etc/secrets/egress-guard-policy"
  environment = merge(
    var.environment_variables,
    var.findings_topic == null ? {} : { EGRESS_GUARD_FINDINGS_TOPIC = var.findings_topic },
    var.policy_secret == null ? {} : { EGRESS_GUARD_POLICY = "${local.policy_mount}/policy.yaml" },
  )
  run_uri = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.sweep.name}:run"
}

resource "google_service_account" "runner" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "egress-guard scheduled sweep"
  description  = "Runs egress-guard sweep --organization ${var.organization_id}; holds only the sweep's custom role."
}

resource "google_organization_iam_custom_role" "sweep" {
  org_id      = var.organization_id
  role_id     = var.role_id
  title       = "egress-guard scheduled sweep"
  description = "Exactly what egress-guard sweep --organization calls (infra/function-methods.yaml runners.sweep_organization)."
  permissions = local.permissions
}

# At the organization: the search covers it, and each project's sweep reads and writes that project.
resource "google_organization_iam_member" "sweep" {
  org_id = var.organization_id
  role   = google_organization_iam_custom_role.sweep.id
  member = "serviceAccount:${google_service_account.runner.email}"
}

# --publish: the findings topic only (roles/pubsub.publisher holds pubsub.topics.publish alone).
resource "google_pubsub_topic_iam_member" "publish" {
  count   = var.findings_topic == null ? 0 : 1
  project = split("/", var.findings_topic)[1]
  topic   = var.findings_topic
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.runner.email}"
}

# The policy file, mounted from its secret at start by the platform with the job's account: read
# access to that one secret, never in the custom role (the command itself calls no Secret Manager API).
resource "google_secret_manager_secret_iam_member" "policy" {
  count     = var.policy_secret == null ? 0 : 1
  project   = var.project_id
  secret_id = var.policy_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runner.email}"
}

resource "google_cloud_run_v2_job" "sweep" {
  project             = var.project_id
  name                = var.name
  location            = var.region
  labels              = var.labels
  deletion_protection = false

  depends_on = [google_secret_manager_secret_iam_member.policy]

  template {
    task_count  = 1
    parallelism = 1
    template {
      service_account = google_service_account.runner.email
      timeout         = var.timeout
      max_retries     = 1 # a sweep is idempotent: a second run decides again from what it reads
      containers {
        image   = var.image
        command = ["egress-guard"]
        args    = local.args
        dynamic "env" {
          for_each = local.environment
          content {
            name  = env.key
            value = env.value
          }
        }
        resources {
          limits = { cpu = "1", memory = var.memory }
        }
        dynamic "volume_mounts" {
          for_each = var.policy_secret == null ? [] : [1]
          content {
            name       = "policy"
            mount_path = local.policy_mount
          }
        }
      }
      dynamic "volumes" {
        for_each = var.policy_secret == null ? [] : [var.policy_secret]
        content {
          name = "policy"
          secret {
            secret = volumes.value
            items {
              version = "latest"
              path    = "policy.yaml"
            }
          }
        }
      }
    }
  }
}

# Cloud Scheduler starts the job through the Cloud Run Admin API (jobs.run) as its own account,
# which may run this one job and nothing else.
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.service_account_id}-start"
  display_name = "egress-guard scheduled sweep: starter"
  description  = "Cloud Scheduler's identity: may run the sweep job only."
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_the_job" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.sweep.name
  role     = "roles/run.invoker" # holds run.jobs.run, on this job only
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_scheduler_job" "sweep" {
  project          = var.project_id
  region           = var.region
  name             = var.name
  description      = "Runs egress-guard sweep --organization ${var.organization_id}."
  schedule         = var.schedule
  time_zone        = var.time_zone
  attempt_deadline = "60s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = local.run_uri
    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }
  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_the_job]
}
