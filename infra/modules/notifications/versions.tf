terraform {
  # 1.11: write-only arguments, so a webhook given through Terraform never lands in the state.
  required_version = ">= 1.11.0"
  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.23 added secret_data_wo to google_secret_manager_secret_version.
      version = "~> 6.23"
    }
  }
}
