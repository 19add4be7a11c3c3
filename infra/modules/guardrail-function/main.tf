# One guardrail function (2nd gen): its bundle, its trigger with retries, and nothing public.

resource "google_cloudfunctions2_function" "function" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket_object.bundle.bucket
        object = google_storage_bucket_object.bundle.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.function.email
    # Only Pub/Sub push (through Eventarc) and callers inside the project's networks reach it.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    available_memory               = var.available_memory
    timeout_seconds                = var.timeout_seconds
    min_instance_count             = var.min_instances
    max_instance_count             = var.max_instances
    # One event at a time per instance: the guardrails block on Compute operations.
    max_instance_request_concurrency = 1
    environment_variables            = var.environment_variables

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment_variables
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }

    dynamic "secret_volumes" {
      for_each = var.secret_volumes
      content {
        mount_path = secret_volumes.key
        project_id = var.project_id
        secret     = secret_volumes.value.secret
        versions {
          version = secret_volumes.value.version
          path    = secret_volumes.value.path
        }
      }
    }
  }

  event_trigger {
    trigger_region = var.region
    event_type     = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic   = var.trigger_topic
    # Transient errors raise and are redelivered; the functions acknowledge permanent ones and
    # events older than their age limit, so retries cannot run forever (docs/design.md §1).
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.function.email
  }

  # The platform reads the secrets when it deploys the first revision.
  depends_on = [google_secret_manager_secret_iam_member.secret_accessor]
}

# Eventarc pushes each message as the function's own service account; it may invoke this
# function's service and no other. No allUsers / allAuthenticatedUsers binding exists.
resource "google_cloud_run_service_iam_member" "trigger_invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function.name
  role     = "roles/run.invoker"
  member   = google_service_account.function.member
}
