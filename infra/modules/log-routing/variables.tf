variable "excluded_principals" {
  description = "Principals whose own writes never reach the topic: egress-guard's service accounts, so its remediations cannot trigger it again."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for p in var.excluded_principals : can(regex("^[^\"\\s]+@[^\"\\s]+$", p))])
    error_message = "Each excluded principal must be an email address without quotes or spaces."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key that encrypts the audit topic (projects/P/locations/L/keyRings/R/cryptoKeys/K); null keeps Google-managed encryption."
  type        = string
  default     = null
}

variable "name" {
  description = "Name of the sink and of the audit topic it writes to."
  type        = string
  default     = "egress-guard-audit"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,62}$", var.name))
    error_message = "The name must be 3-63 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "project_id" {
  description = "Project that holds the audit topic (and the sink, when scope.type is project)."
  type        = string
}

variable "scope" {
  description = "Where the sink lives: project (default: var.project_id), or an aggregated sink on a folder or organization (id = folder or organization number) that includes every child project."
  type = object({
    type = string
    id   = optional(string)
  })
  default  = { type = "project" }
  nullable = false
  validation {
    condition     = contains(["project", "folder", "organization"], var.scope.type)
    error_message = "scope.type must be one of project, folder, organization."
  }
  validation {
    condition     = var.scope.type == "project" || can(regex("^[0-9]+$", coalesce(var.scope.id, "-")))
    error_message = "A folder or organization scope needs its numeric id in scope.id."
  }
}

variable "trigger_methods" {
  description = "Audit-log methodName values that reach egress-guard (docs/design.md §1): connector creation, Cloud Run v1/v2 service and job writes, Cloud Run v2 worker pool writes, Cloud Functions v2 and v1 (1st gen) writes, App Engine versions, and router/firewall changes (drift guards)."
  type        = list(string)
  default = [
    "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector",
    "google.cloud.run.v1.Services.CreateService",
    "google.cloud.run.v1.Services.ReplaceService",
    "google.cloud.run.v2.Services.CreateService",
    "google.cloud.run.v2.Services.UpdateService",
    "google.cloud.run.v1.Jobs.CreateJob",
    "google.cloud.run.v1.Jobs.ReplaceJob",
    "google.cloud.run.v2.Jobs.CreateJob",
    "google.cloud.run.v2.Jobs.UpdateJob",
    "google.cloud.run.v2.WorkerPools.CreateWorkerPool",
    "google.cloud.run.v2.WorkerPools.UpdateWorkerPool",
    "google.cloud.functions.v2.FunctionService.CreateFunction",
    "google.cloud.functions.v2.FunctionService.UpdateFunction",
    "google.cloud.functions.v1.CloudFunctionsService.CreateFunction",
    "google.cloud.functions.v1.CloudFunctionsService.UpdateFunction",
    "google.appengine.v1.Versions.CreateVersion",
    "v1.compute.routers.patch",
    "v1.compute.routers.update",
    "v1.compute.routers.delete",
    "v1.compute.firewalls.insert",
    "v1.compute.firewalls.patch",
    "v1.compute.firewalls.update",
    "v1.compute.firewalls.delete",
  ]
  validation {
    condition     = length(var.trigger_methods) > 0 && alltrue([for m in var.trigger_methods : can(regex("^[A-Za-z0-9_.]+$", m))])
    error_message = "Give at least one method name; method names are letters, digits, dots and underscores."
  }
}
