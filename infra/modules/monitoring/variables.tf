variable "dead_letter_subscription" {
  description = "The dead-letter inbox subscription to watch (projects/P/subscriptions/S, the notifications module's dead_letter_inbox output)."
  type        = string
  validation {
    condition     = can(regex("^projects/[^/]+/subscriptions/[^/]+$", var.dead_letter_subscription))
    error_message = "dead_letter_subscription is a subscription id: projects/P/subscriptions/S."
  }
}

variable "dead_letter_threshold" {
  description = "Alert when more than this many messages wait in the dead-letter inbox (0: any message)."
  type        = number
  default     = 0
  validation {
    condition     = var.dead_letter_threshold >= 0
    error_message = "dead_letter_threshold is 0 or more."
  }
}

variable "function_errors_duration" {
  description = "How long the failure rate must stay above the threshold before the alert fires (seconds, as a duration string)."
  type        = string
  default     = "600s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.function_errors_duration))
    error_message = "function_errors_duration is a number of seconds such as \"600s\"."
  }
}

variable "function_errors_threshold" {
  description = "Alert when one function fails more than this many executions in 5 minutes (transient errors are retried, so a few are normal)."
  type        = number
  default     = 5
  validation {
    condition     = var.function_errors_threshold >= 0
    error_message = "function_errors_threshold is 0 or more."
  }
}

variable "function_services" {
  description = "Names of the functions to watch (a 2nd gen function's Cloud Run service has the function's name). Empty: no function-errors alert."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "User labels put on the alert policies."
  type        = map(string)
  default     = {}
}

variable "name_prefix" {
  description = "Prefix of the alert policies' display names."
  type        = string
  default     = "egress-guard"
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (projects/P/notificationChannels/ID) that receive the alerts: e-mail, PagerDuty, a Slack channel other than the one egress-guard posts to."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Each notification channel is projects/P/notificationChannels/ID."
  }
}

variable "project_id" {
  description = "Project that holds the dead-letter inbox and the functions (where the alert policies live)."
  type        = string
}
