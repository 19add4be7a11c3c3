variable "alerts" {
  description = "Alert policies on the dead-letter inbox and on failing functions (modules/monitoring), sent to these Cloud Monitoring notification channels (projects/P/notificationChannels/ID). Off by default."
  type = object({
    enabled               = optional(bool, false)
    notification_channels = optional(list(string), [])
  })
  default  = {}
  nullable = false
  validation {
    condition     = alltrue([for c in var.alerts.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Each notification channel is projects/P/notificationChannels/ID."
  }
}

variable "bundle_dir" {
  description = "Directory where `make package` wrote <function>.zip; relative paths start at this example."
  type        = string
  default     = "../../../dist/functions"
}

variable "dead_letter_max_delivery_attempts" {
  description = "Deliveries of one event (first try + retries) before it goes to the dead-letter topic."
  type        = number
  default     = 10
  validation {
    condition     = var.dead_letter_max_delivery_attempts >= 5 && var.dead_letter_max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts."
  }
}

variable "dead_letter_with_gcloud" {
  description = "Attach the dead-letter topic to each trigger subscription with gcloud (needs gcloud, authenticated, where Terraform runs). The provider cannot do it: see modules/guardrail-function/README.md."
  type        = bool
  default     = true
}

variable "deployers" {
  description = "Members allowed to redeploy the functions' code (e.g. \"serviceAccount:PROJECT_NUMBER@cloudbuild.gserviceaccount.com\" for cloudbuild.yaml): they may act as the functions' service accounts."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.deployers : can(regex("^(serviceAccount|user|group):[^@\\s]+@[^@\\s]+$", m))])
    error_message = "Each deployer is an IAM member: serviceAccount:EMAIL, user:EMAIL or group:EMAIL."
  }
}

variable "enable_apis" {
  description = "Enable the Google APIs egress-guard needs in project_id (never disabled on destroy)."
  type        = bool
  default     = true
}

variable "enabled_functions" {
  description = "Which functions to deploy; the others are left out entirely (their audit events are still routed)."
  type        = list(string)
  default     = ["ensure_nat", "replace_connector_firewalls", "notify_slack"]
  validation {
    condition     = alltrue([for f in var.enabled_functions : contains(["ensure_nat", "replace_connector_firewalls", "notify_slack"], f)])
    error_message = "enabled_functions may only name ensure_nat, replace_connector_firewalls and notify_slack."
  }
}

variable "instances" {
  description = "Per function: instances kept warm (min, default 0) and the most at once (max, default 3)."
  type = map(object({
    min = optional(number, 0)
    max = optional(number, 3)
  }))
  default = {}
  validation {
    condition     = alltrue([for k, v in var.instances : v.min >= 0 && v.max >= 1 && v.min <= v.max])
    error_message = "For each function, 0 <= min <= max and max >= 1."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key for the topics and the Slack secret (projects/P/locations/L/keyRings/R/cryptoKeys/K); null keeps Google-managed encryption. The Pub/Sub and Secret Manager service agents need encrypt/decrypt on it."
  type        = string
  default     = null
  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name is a full key name: projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels put on the functions and the bundle bucket."
  type        = map(string)
  default     = { app = "egress-guard" }
}

variable "name_prefix" {
  description = "Prefix of every name: topics, sink, secret, bucket, functions (<prefix>-ensure-nat...)."
  type        = string
  default     = "egress-guard"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix is 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "policy_yaml" {
  description = "The egress-guard policy as YAML text (egress_guard/policy.py documents it), e.g. file(\"policy.yaml\"): stored in Secret Manager and mounted into every function as the file EGRESS_GUARD_POLICY names. Empty: no file, the documented defaults."
  type        = string
  default     = ""
}

variable "project_id" {
  description = "Project where egress-guard runs (functions, topics, secret, bucket); with scope.type = project it is also the project it guards."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id is a project id (6-30 lowercase letters, digits, hyphens), not a number or a name."
  }
}

variable "region" {
  description = "Region of the functions and their triggers (Cloud Run functions 2nd gen region)."
  type        = string
  default     = "europe-west2"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region is a Google Cloud region such as europe-west2 or us-central1."
  }
}

variable "scope" {
  description = "What egress-guard guards: project (project_id), or every project of a folder or organization (type = folder | organization, id = its number; a folder also needs organization_id, where its custom roles live). Sets both the sink and the functions' IAM."
  type = object({
    type            = string
    id              = optional(string)
    organization_id = optional(string)
  })
  default  = { type = "project" }
  nullable = false
  validation {
    condition     = contains(["project", "folder", "organization"], var.scope.type)
    error_message = "scope.type is project, folder or organization."
  }
  validation {
    condition     = var.scope.type == "project" || can(regex("^[0-9]+$", coalesce(var.scope.id, "-")))
    error_message = "A folder or organization scope needs its number in scope.id."
  }
  validation {
    condition     = var.scope.type != "folder" || can(regex("^[0-9]+$", coalesce(var.scope.organization_id, "-")))
    error_message = "A folder scope needs its organization number in scope.organization_id (custom roles live in the organization)."
  }
}

variable "scheduled_sweep" {
  description = "egress-guard sweep --organization on a schedule (modules/scheduled-sweep): the organization's number, an image with egress-guard installed, a cron schedule, dry_run. Off by default."
  type = object({
    enabled         = optional(bool, false)
    organization_id = optional(string, "")
    image           = optional(string, "")
    schedule        = optional(string, "0 3 * * *")
    dry_run         = optional(bool, true)
  })
  default  = {}
  nullable = false
  validation {
    condition     = !var.scheduled_sweep.enabled || (can(regex("^[0-9]{1,19}$", var.scheduled_sweep.organization_id)) && var.scheduled_sweep.image != "")
    error_message = "An enabled scheduled_sweep needs organization_id (the organization's number) and image."
  }
}

variable "slack_destinations" {
  description = "The team destinations the policy's notify.routes name (besides default): one webhook secret each, given to notify_slack as SLACK_WEBHOOK_URL_<DESTINATION>."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for d in var.slack_destinations : can(regex("^[a-z][a-z0-9-]{0,29}$", d)) && d != "default"])
    error_message = "Each destination is 1-30 lowercase letters, digits or hyphens, starting with a letter, and not \"default\"."
  }
}

variable "slack_webhook_url" {
  description = "Optional Slack incoming-webhook URL, written to Secret Manager as a write-only value (never in the state). Needs slack_webhook_url_version >= 1. Leave null to add it with gcloud instead."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "slack_webhook_url_version" {
  description = "0: you add the webhook secret's version yourself. N >= 1: Terraform writes slack_webhook_url; raise N to rotate it."
  type        = number
  default     = 0
  validation {
    condition     = var.slack_webhook_url_version >= 0
    error_message = "slack_webhook_url_version is 0 or more."
  }
}
