variable "dead_letter_retention" {
  description = "How long dead-lettered messages stay in the inbox subscription for a person to inspect or replay (seconds, as a duration string)."
  type        = string
  default     = "604800s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention)) && try(tonumber(trimsuffix(var.dead_letter_retention, "s")) <= 604800, false)
    error_message = "dead_letter_retention is a number of seconds such as \"604800s\", at most 7 days."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key for the topics and the secret (projects/P/locations/L/keyRings/R/cryptoKeys/K); null keeps Google-managed encryption."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of every resource name: <prefix>-findings, <prefix>-dead-letter, <prefix>-slack-webhook."
  type        = string
  default     = "egress-guard"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 2-41 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "project_id" {
  description = "Project that holds the findings and dead-letter topics and the Slack webhook secret."
  type        = string
}

variable "slack_destinations" {
  description = "Names of the Slack destinations the policy's notify.routes send to, besides the default: one Secret Manager secret each (<prefix>-slack-webhook-<name>)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for d in var.slack_destinations : can(regex("^[a-z][a-z0-9-]{0,29}$", d)) && d != "default"])
    error_message = "Each destination is 1-30 lowercase letters, digits or hyphens, starting with a letter, and not \"default\" (the default destination is slack_webhook)."
  }
}

variable "slack_webhook_url" {
  description = "Optional Slack incoming-webhook URL. Write-only: sent to Secret Manager, never stored in the Terraform state. Leave null and add the version yourself with `gcloud secrets versions add`."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "slack_webhook_url_version" {
  description = "0: Terraform manages no secret version (you add it). N > 0: Terraform writes slack_webhook_url as the secret's version; raise N to rotate it."
  type        = number
  default     = 0
  nullable    = false
  validation {
    condition     = var.slack_webhook_url_version >= 0 && floor(var.slack_webhook_url_version) == var.slack_webhook_url_version
    error_message = "slack_webhook_url_version is a whole number, 0 or more."
  }
}
