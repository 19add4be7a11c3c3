# The function's own identity and exactly the permissions its code uses (docs/design.md §5).

locals {
  # Custom role ids allow letters, digits, underscores and dots only.
  role_id = replace(var.name, "-", "_")
  # Folders cannot hold custom roles: a folder-scoped function uses an organization role.
  role_in_project      = var.iam_scope.type == "project" && length(var.permissions) > 0
  role_in_organization = var.iam_scope.type != "project" && length(var.permissions) > 0
  role_project         = coalesce(var.iam_scope.id, var.project_id)
  role_organization    = var.iam_scope.type == "folder" ? var.iam_scope.organization_id : var.iam_scope.id
  secrets = toset(concat(
    [for s in values(var.secret_environment_variables) : s.secret],
    [for s in values(var.secret_volumes) : s.secret],
  ))
  role_name = one(concat(
    google_project_iam_custom_role.role[*].name,
    google_organization_iam_custom_role.role[*].name,
  ))
}

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "egress-guard ${var.name}"
  description  = "Runs ${var.name} and nothing else; holds only the permissions its code uses."
}

resource "google_project_iam_custom_role" "role" {
  count       = local.role_in_project ? 1 : 0
  project     = local.role_project
  role_id     = local.role_id
  title       = "egress-guard ${var.name}"
  description = "Exactly the permissions ${var.name} uses (infra/permissions.yaml)."
  permissions = sort(var.permissions)
}

resource "google_organization_iam_custom_role" "role" {
  count       = local.role_in_organization ? 1 : 0
  org_id      = local.role_organization
  role_id     = local.role_id
  title       = "egress-guard ${var.name}"
  description = "Exactly the permissions ${var.name} uses (infra/permissions.yaml)."
  permissions = sort(var.permissions)
}

# The custom role, granted where the guarded resources are: one project by default.
resource "google_project_iam_member" "role" {
  count   = local.role_in_project ? 1 : 0
  project = local.role_project
  role    = local.role_name
  member  = google_service_account.function.member
}

# ... or every project of a folder ...
resource "google_folder_iam_member" "role" {
  count  = local.role_in_organization && var.iam_scope.type == "folder" ? 1 : 0
  folder = "folders/${var.iam_scope.id}"
  role   = local.role_name
  member = google_service_account.function.member
}

# ... or every project of the organization.
resource "google_organization_iam_member" "role" {
  count  = local.role_in_organization && var.iam_scope.type == "organization" ? 1 : 0
  org_id = var.iam_scope.id
  role   = local.role_name
  member = google_service_account.function.member
}

# Publishing findings: on the named topics only (roles/pubsub.publisher = pubsub.topics.publish).
resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = toset(var.publish_topics)
  project  = split("/", each.value)[1]
  topic    = split("/", each.value)[3]
  role     = "roles/pubsub.publisher"
  member   = google_service_account.function.member
}

# Secret environment variables and volumes: the platform reads them as this account, and this
# account may read those secrets only.
resource "google_secret_manager_secret_iam_member" "secret_accessor" {
  for_each  = local.secrets
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

# Whoever deploys new code (Cloud Build) must act as this account, and only this account.
resource "google_service_account_iam_member" "deployer" {
  for_each           = toset(var.deployers)
  service_account_id = google_service_account.function.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
