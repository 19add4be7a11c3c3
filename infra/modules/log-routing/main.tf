# Audit-log routing: one sink with a precise filter -> the audit topic (docs/design.md §1, §5).
# One filter covers every trigger method; an organization or folder sink covers every project
# below it, which is why this is the default route rather than one Eventarc trigger per method.

locals {
  # The filter is built here, and only here, from the method list: localcloud evaluates the
  # exact same text (localcloud/infra_sink.py renders it from these expressions), so a typo
  # fails the end-to-end tests instead of silently dropping events in Google Cloud.
  quoted_methods    = [for m in var.trigger_methods : "\"${m}\""]
  quoted_principals = [for p in var.excluded_principals : "\"${p}\""]
  filter_clauses = concat(
    # Admin Activity only: always on, and where every trigger method is written.
    ["logName:\"cloudaudit.googleapis.com%2Factivity\""],
    ["protoPayload.methodName=(${join(" OR ", local.quoted_methods)})"],
    # egress-guard's own writes would trigger it again: drop them at the source.
    length(local.quoted_principals) == 0 ? [] : ["NOT protoPayload.authenticationInfo.principalEmail=(${join(" OR ", local.quoted_principals)})"],
  )
  filter = join(" AND ", local.filter_clauses)

  writer_identity = one(concat(
    google_logging_project_sink.sink[*].writer_identity,
    google_logging_folder_sink.sink[*].writer_identity,
    google_logging_organization_sink.sink[*].writer_identity,
  ))
}

resource "google_pubsub_topic" "audit" {
  project      = var.project_id
  name         = var.name
  kms_key_name = var.kms_key_name
}

resource "google_logging_project_sink" "sink" {
  count                  = var.scope.type == "project" ? 1 : 0
  project                = var.project_id
  name                   = var.name
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.audit.id}"
  filter                 = local.filter
  unique_writer_identity = true
}

resource "google_logging_folder_sink" "sink" {
  count            = var.scope.type == "folder" ? 1 : 0
  folder           = var.scope.id
  name             = var.name
  destination      = "pubsub.googleapis.com/${google_pubsub_topic.audit.id}"
  filter           = local.filter
  include_children = true
}

resource "google_logging_organization_sink" "sink" {
  count            = var.scope.type == "organization" ? 1 : 0
  org_id           = var.scope.id
  name             = var.name
  destination      = "pubsub.googleapis.com/${google_pubsub_topic.audit.id}"
  filter           = local.filter
  include_children = true
}

# The sink's writer identity may publish to the audit topic, and to nothing else.
resource "google_pubsub_topic_iam_member" "sink_writer" {
  project = var.project_id
  topic   = google_pubsub_topic.audit.name
  role    = "roles/pubsub.publisher"
  member  = local.writer_identity
}
