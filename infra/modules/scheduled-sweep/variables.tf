variable "dry_run" {
  description = "Run the sweep with --dry-run: plan and report, change nothing."
  type        = bool
  default     = true
}

variable "environment_variables" {
  description = "Environment of the sweep (EGRESS_GUARD_POLICY, EGRESS_GUARD_SELF_PRINCIPALS, ...), as the functions get it."
  type        = map(string)
  default     = {}
}

variable "findings_topic" {
  description = "projects/P/topics/T: publish each finding there (--publish) so notify_slack posts it; null: the job's log only."
  type        = string
  default     = null
  validation {
    condition     = var.findings_topic == null || can(regex("^projects/[^/]+/topics/[^/]+$", var.findings_topic))
    error_message = "findings_topic is projects/P/topics/T or null."
  }
}

variable "image" {
  description = "A container image with egress-guard installed (its egress-guard command on PATH), e.g. built FROM python:3.12-slim with pip install of this repository."
  type        = string
}

variable "labels" {
  description = "User labels put on the Cloud Run job."
  type        = map(string)
  default     = {}
}

variable "memory" {
  description = "Memory limit of the job's container (a 1,000-project organization sweep stays under 512Mi on localcloud)."
  type        = string
  default     = "1Gi"
}

variable "name" {
  description = "Name of the Cloud Run job and of the Cloud Scheduler job."
  type        = string
  default     = "egress-guard-sweep"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}[a-z0-9]$", var.name))
    error_message = "name is 2-50 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "organization_id" {
  description = "The organization to sweep (its number): the job runs egress-guard sweep --organization with it, and the custom role is created and granted there."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{1,19}$", var.organization_id))
    error_message = "organization_id is the organization's number, without organizations/."
  }
}

variable "project_id" {
  description = "The project that runs the job and the scheduler (egress-guard's own project)."
  type        = string
}

variable "policy_secret" {
  description = "Secret Manager secret id (in project_id) holding the policy YAML, mounted as the file EGRESS_GUARD_POLICY names; null: the documented defaults."
  type        = string
  default     = null
}

variable "projects_at_once" {
  description = "Projects swept live at once (--projects-at-once)."
  type        = number
  default     = 4
  validation {
    condition     = var.projects_at_once >= 1 && var.projects_at_once <= 32
    error_message = "projects_at_once is 1 to 32."
  }
}

variable "region" {
  description = "Region of the Cloud Run job and the Cloud Scheduler job."
  type        = string
}

variable "role_id" {
  description = "Id of the organization custom role holding the sweep's permissions."
  type        = string
  default     = "egressGuardSweep"
  validation {
    condition     = can(regex("^[a-zA-Z0-9_.]{3,64}$", var.role_id))
    error_message = "role_id is 3-64 letters, digits, underscores or dots."
  }
}

variable "schedule" {
  description = "When to sweep, in cron syntax (Cloud Scheduler's unix-cron format)."
  type        = string
  default     = "0 3 * * *"
}

variable "service_account_id" {
  description = "Account id of the sweep's own service account (the scheduler's is this with -start)."
  type        = string
  default     = "egress-guard-sweep"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,22}[a-z0-9]$", var.service_account_id))
    error_message = "service_account_id is 6-24 characters (the scheduler's adds -start, within the 30 allowed)."
  }
}

variable "time_zone" {
  description = "Time zone of the schedule (tz database name)."
  type        = string
  default     = "Etc/UTC"
}

variable "timeout" {
  description = "How long one sweep may run before Cloud Run stops it (a duration such as \"3600s\")."
  type        = string
  default     = "3600s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.timeout))
    error_message = "timeout is a number of seconds such as \"3600s\"."
  }
}
