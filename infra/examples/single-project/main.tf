# egress-guard in one project (or, with var.scope, for a whole folder or organization):
# audit sink -> audit topic -> ensure_nat, replace_connector_firewalls -> findings topic ->
# notify_slack -> Slack. Functions are defined in functions.tf.

locals {
  # egress-guard's own identities: their writes are excluded from the sink, and the functions
  # ignore them too, so a remediation can never trigger another one (docs/design.md §1).
  self_principals = [for name in sort(keys(local.functions)) : "${local.functions[name].service_account_id}@${var.project_id}.iam.gserviceaccount.com"]

  # The environment every function reads at cold start (egress_guard/config.py).
  common_environment = merge(
    {
      EGRESS_GUARD_PROJECT         = var.project_id
      EGRESS_GUARD_SELF_PRINCIPALS = join(",", local.self_principals)
    },
    var.policy_yaml == "" ? {} : { EGRESS_GUARD_POLICY = local.policy_file }, # policy.tf
  )

  enabled = { for name, f in local.functions : name => f if contains(var.enabled_functions, name) }

  apis = [
    "cloudbuild.googleapis.com",       # builds the functions
    "cloudfunctions.googleapis.com",   # the functions
    "compute.googleapis.com",          # routers, NATs, firewall rules
    "eventarc.googleapis.com",         # the functions' Pub/Sub triggers
    "iam.googleapis.com",              # service accounts and custom roles
    "logging.googleapis.com",          # the audit-log sink
    "monitoring.googleapis.com",       # the alert policies (var.alerts)
    "pubsub.googleapis.com",           # audit, findings and dead-letter topics
    "run.googleapis.com",              # the functions' services (and the workloads guarded)
    "secretmanager.googleapis.com",    # the Slack webhook
    "storage.googleapis.com",          # the bundle bucket
    "vpcaccess.googleapis.com",        # reading connectors
    "artifactregistry.googleapis.com", # the functions' images
    "cloudresourcemanager.googleapis.com",
    "cloudasset.googleapis.com",     # the scheduled sweep's search (var.scheduled_sweep)
    "cloudscheduler.googleapis.com", # the scheduled sweep's schedule
  ]
}

resource "google_project_service" "apis" {
  for_each           = var.enable_apis ? toset(local.apis) : toset([])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

module "notifications" {
  source                    = "../../modules/notifications"
  project_id                = var.project_id
  name_prefix               = var.name_prefix
  kms_key_name              = var.kms_key_name
  slack_webhook_url         = var.slack_webhook_url
  slack_webhook_url_version = var.slack_webhook_url_version
  slack_destinations        = var.slack_destinations
  depends_on                = [google_project_service.apis]
}

# Watch the watcher (optional): alerts on dead letters and failing functions, sent to the
# notification channels given; the runbook is in infra/README.md.
module "monitoring" {
  source                   = "../../modules/monitoring"
  count                    = var.alerts.enabled ? 1 : 0
  project_id               = var.project_id
  name_prefix              = var.name_prefix
  dead_letter_subscription = module.notifications.dead_letter_inbox
  function_services        = [for f in module.functions : f.name]
  notification_channels    = var.alerts.notification_channels
  labels                   = var.labels
  depends_on               = [google_project_service.apis]
}

# The scheduled organization sweep (optional, off by default): a Cloud Run job running
# egress-guard sweep --organization on a schedule, with its own account and organization role.
module "scheduled_sweep" {
  source                = "../../modules/scheduled-sweep"
  count                 = var.scheduled_sweep.enabled ? 1 : 0
  project_id            = var.project_id
  region                = var.region
  organization_id       = var.scheduled_sweep.organization_id
  image                 = var.scheduled_sweep.image
  schedule              = var.scheduled_sweep.schedule
  dry_run               = var.scheduled_sweep.dry_run
  name                  = "${var.name_prefix}-sweep"
  findings_topic        = module.notifications.findings_topic_id
  policy_secret         = var.policy_yaml == "" ? null : google_secret_manager_secret.policy[0].secret_id
  environment_variables = { for k, v in local.common_environment : k => v if k != "EGRESS_GUARD_POLICY" }
  labels                = var.labels
  depends_on            = [google_project_service.apis, google_secret_manager_secret_version.policy]
}

module "log_routing" {
  source              = "../../modules/log-routing"
  project_id          = var.project_id
  name                = "${var.name_prefix}-audit"
  scope               = { type = var.scope.type, id = var.scope.id }
  excluded_principals = local.self_principals
  kms_key_name        = var.kms_key_name
  depends_on          = [google_project_service.apis]
}

# The bundles made by `make package`, one object per content hash.
resource "google_storage_bucket" "bundles" {
  #checkov:skip=CKV_GCP_62:Usage logs need a second bucket; Google recommends Cloud Audit Logs for Cloud Storage access instead (writes are Admin Activity, always on; enable Data Access logs for reads)
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-bundles"
  location                    = upper(var.region)
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  versioning {
    enabled = true
  }
  # Old bundles are only needed to roll back; keep the last few.
  lifecycle_rule {
    condition {
      num_newer_versions = 5
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_project_service.apis]
}

module "functions" {
  source   = "../../modules/guardrail-function"
  for_each = local.enabled

  project_id         = var.project_id
  region             = var.region
  name               = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description        = each.value.description
  entry_point        = each.value.entry_point
  service_account_id = each.value.service_account_id
  permissions        = each.value.permissions
  labels             = var.labels
  bundle = {
    bucket = google_storage_bucket.bundles.name
    path   = abspath("${path.module}/${var.bundle_dir}/${each.key}.zip")
  }
  iam_scope = var.scope.type == "project" ? { type = "project", id = var.project_id, organization_id = null } : var.scope

  trigger_topic  = each.value.trigger == "audit" ? module.log_routing.topic_id : module.notifications.findings_topic_id
  publish_topics = each.value.publishes_findings ? [module.notifications.findings_topic_id] : []
  dead_letter = {
    topic                 = module.notifications.dead_letter_topic_id
    max_delivery_attempts = var.dead_letter_max_delivery_attempts
    apply_with_gcloud     = var.dead_letter_with_gcloud
  }

  environment_variables = merge(
    local.common_environment,
    each.value.publishes_findings ? { EGRESS_GUARD_FINDINGS_TOPIC = module.notifications.findings_topic_id } : {},
  )
  # The default destination's webhook, and one per team destination of the policy's notify.routes.
  secret_environment_variables = each.value.uses_slack ? merge(
    { SLACK_WEBHOOK_URL = { secret = module.notifications.slack_webhook_secret_id } },
    { for name, secret in module.notifications.slack_destination_secret_ids :
    "SLACK_WEBHOOK_URL_${upper(replace(name, "-", "_"))}" => { secret = secret } },
  ) : {}
  secret_volumes = local.policy_volumes

  min_instances = lookup(var.instances, each.key, { min = 0, max = 3 }).min
  max_instances = lookup(var.instances, each.key, { min = 0, max = 3 }).max
  deployers     = var.deployers

  # The platform reads the policy file when an instance starts: the version must exist first.
  depends_on = [google_project_service.apis, google_secret_manager_secret_version.policy]
}
