# The policy file. egress_guard reads EGRESS_GUARD_POLICY as a path, so the YAML is stored in
# Secret Manager (a versioned, access-controlled file; not because it is secret) and mounted into
# each function at local.policy_file. Without policy_yaml, no file: the documented defaults apply.

locals {
  policy_mount = "/etc/secrets/egress-guard-policy" # Google's recommended mount root for secrets
  policy_file  = "${local.policy_mount}/policy.yaml"
  policy_volumes = var.policy_yaml == "" ? {} : {
    (local.policy_mount) = { secret = google_secret_manager_secret.policy[0].secret_id, path = "policy.yaml" }
  }
}

resource "google_secret_manager_secret" "policy" {
  count     = var.policy_yaml == "" ? 0 : 1
  project   = var.project_id
  secret_id = "${var.name_prefix}-policy"
  labels    = var.labels
  replication {
    auto {
      dynamic "customer_managed_encryption" {
        for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
        content {
          kms_key_name = customer_managed_encryption.value
        }
      }
    }
  }
  depends_on = [google_project_service.apis]
}

# A policy change is a new version; new instances mount it (redeploy to switch running ones).
resource "google_secret_manager_secret_version" "policy" {
  count       = var.policy_yaml == "" ? 0 : 1
  secret      = google_secret_manager_secret.policy[0].id
  secret_data = var.policy_yaml
}
