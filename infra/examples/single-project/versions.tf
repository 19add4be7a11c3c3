terraform {
  # 1.11: write-only arguments keep an optional Slack webhook out of the state.
  required_version = ">= 1.11.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.23"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
