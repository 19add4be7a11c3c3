variable "available_memory" {
  description = "Memory of one function instance (Cloud Functions units: 256Mi, 512Mi, 1Gi...). The Google client libraries need about 150 MiB on their own."
  type        = string
  default     = "512Mi"
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.available_memory))
    error_message = "available_memory is a size such as 512Mi or 1Gi."
  }
}

variable "build_service_account" {
  description = "Service account that builds the function (projects/P/serviceAccounts/EMAIL); null uses the project's default build service account."
  type        = string
  default     = null
}

variable "bundle" {
  description = "The function's deployable bundle: the zip made by `make package` (dist/functions/<name>.zip) and the bucket it is uploaded to. The object is named by the zip's sha256, so a new bundle means a new deployment and an unchanged one means none."
  type = object({
    bucket = string
    path   = string
  })
  validation {
    condition     = endswith(var.bundle.path, ".zip")
    error_message = "bundle.path must be the .zip that `make package` writes."
  }
}

variable "dead_letter" {
  description = "Dead-letter topic (projects/P/topics/T) for the function's trigger subscription, how many deliveries come first, and whether `gcloud` (on the machine running Terraform) attaches it: the provider cannot set a dead-letter policy on the subscription Eventarc creates (hashicorp/terraform-provider-google#25069)."
  type = object({
    topic                 = string
    max_delivery_attempts = optional(number, 10)
    apply_with_gcloud     = optional(bool, true)
  })
  nullable = false
  validation {
    condition     = var.dead_letter.max_delivery_attempts >= 5 && var.dead_letter.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts before dead lettering."
  }
  validation {
    condition     = can(regex("^projects/[^/]+/topics/[^/]+$", var.dead_letter.topic))
    error_message = "dead_letter.topic is a topic id: projects/P/topics/T."
  }
}

variable "deployers" {
  description = "Members (e.g. serviceAccount:<cloud build SA>) allowed to deploy new code as this function's service account (roles/iam.serviceAccountUser on that account only)."
  type        = list(string)
  default     = []
}

variable "description" {
  description = "What the function does, shown in the console."
  type        = string
  default     = ""
}

variable "entry_point" {
  description = "Name of the @functions_framework.cloud_event function in the bundle's main.py."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.entry_point))
    error_message = "entry_point is a Python identifier."
  }
}

variable "environment_variables" {
  description = "Plain environment variables of the function (findings topic, policy, self principals...). Never put secrets here: use secret_environment_variables."
  type        = map(string)
  default     = {}
}

variable "iam_scope" {
  description = "Where the function's custom role is defined and granted: a project (id defaults to project_id), or an organization (id = organization number) or folder (id = folder number, organization_id = its organization, which defines the role) to guard every project below it."
  type = object({
    type            = string
    id              = optional(string)
    organization_id = optional(string)
  })
  default  = { type = "project" }
  nullable = false
  validation {
    condition     = contains(["project", "folder", "organization"], var.iam_scope.type)
    error_message = "iam_scope.type must be project, folder or organization."
  }
  validation {
    condition     = var.iam_scope.type != "folder" || (var.iam_scope.id != null && var.iam_scope.organization_id != null)
    error_message = "A folder scope needs the folder number (id) and its organization number (organization_id): custom roles live in the organization."
  }
  validation {
    condition     = var.iam_scope.type != "organization" || var.iam_scope.id != null
    error_message = "An organization scope needs the organization number in id."
  }
}

variable "labels" {
  description = "Labels of the function."
  type        = map(string)
  default     = {}
}

variable "max_instances" {
  description = "Most instances at once: bounds the API calls a burst of audit entries can cause."
  type        = number
  default     = 3
  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100
    error_message = "max_instances is between 1 and 100."
  }
}

variable "min_instances" {
  description = "Instances kept warm (0 = scale to zero; 1 removes the cold start of the Google client libraries, at a cost)."
  type        = number
  default     = 0
  validation {
    condition     = var.min_instances >= 0 && var.min_instances <= 10
    error_message = "min_instances is between 0 and 10."
  }
}

variable "name" {
  description = "Name of the function (and of its Cloud Run service), e.g. egress-guard-ensure-nat."
  type        = string
  validation {
    condition     = can(regex("^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$", var.name))
    error_message = "A function name is lowercase letters, digits and hyphens, starting with a letter, at most 63 characters."
  }
}

variable "permissions" {
  description = "Exactly the IAM permissions the function's code uses, derived from infra/permissions.yaml and the methods in infra/function-methods.yaml. Empty: no custom role."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for p in var.permissions : can(regex("^[a-z][a-zA-Z0-9]*\\.[a-zA-Z0-9]+\\.[a-zA-Z0-9]+$", p))])
    error_message = "Each permission looks like service.resource.verb."
  }
}

variable "project_id" {
  description = "Project where the function, its service account and its trigger live."
  type        = string
}

variable "publish_topics" {
  description = "Topics (projects/P/topics/T) the function publishes to; it gets roles/pubsub.publisher on each of them and nowhere else."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for t in var.publish_topics : can(regex("^projects/[^/]+/topics/[^/]+$", t))])
    error_message = "publish_topics holds topic ids: projects/P/topics/T."
  }
}

variable "region" {
  description = "Region of the function and of its Pub/Sub trigger."
  type        = string
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python312"
  validation {
    condition     = can(regex("^python3[0-9]+$", var.runtime))
    error_message = "The bundles are Python: the runtime is python3NN."
  }
}

variable "secret_environment_variables" {
  description = "Environment variables read from Secret Manager at instance start (key => secret id and version); the function's service account may access these secrets and no others."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
}

variable "secret_volumes" {
  description = "Secrets mounted as files (mount directory => secret id, version, file name), e.g. the policy YAML at /etc/secrets/egress-guard-policy/policy.yaml; the function's service account may access these secrets and no others."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
    path    = string
  }))
  default = {}
  validation {
    condition     = alltrue([for mount in keys(var.secret_volumes) : can(regex("^/[^:]+$", mount)) && !contains(["/cloudsql", "/dev/log", "/pod", "/proc", "/var/log"], mount)])
    error_message = "Mount paths are absolute directories outside the reserved /cloudsql, /dev/log, /pod, /proc, /var/log (Google recommends /etc/secrets/...)."
  }
}

variable "service_account_id" {
  description = "Account id (the part before @) of the function's own service account, 6-30 characters."
  type        = string
  validation {
    condition     = can(regex("^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$", var.service_account_id))
    error_message = "service_account_id is 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "ack_deadline_seconds" {
  description = "The trigger subscription's ack deadline: how long Pub/Sub waits for a push's answer before delivering the message again (the local stack's push subscriptions use the same 60). notify_slack's budget (EGRESS_GUARD_SLACK_BUDGET_S, 45) stays below it."
  type        = number
  default     = 60
  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "Pub/Sub accepts ack deadlines of 10 to 600 seconds."
  }
}

variable "timeout_seconds" {
  description = "How long one event may take (it includes waiting for Compute operations) before the platform retries it."
  type        = number
  default     = 120
  validation {
    condition     = var.timeout_seconds >= 10 && var.timeout_seconds <= 540
    error_message = "Event-driven functions accept 10 to 540 seconds."
  }
}

variable "trigger_topic" {
  description = "Topic (projects/P/topics/T) whose messages trigger the function: the audit topic for remediation functions, the findings topic for notify_slack."
  type        = string
  validation {
    condition     = can(regex("^projects/[^/]+/topics/[^/]+$", var.trigger_topic))
    error_message = "trigger_topic is a topic id: projects/P/topics/T."
  }
}
