# The bundle made by `make package` is reproducible (same sources, same bytes), so naming the
# object by its sha256 makes deployment convergent: unchanged code is never redeployed.
resource "google_storage_bucket_object" "bundle" {
  bucket       = var.bundle.bucket
  name         = "${var.name}/${filesha256(var.bundle.path)}.zip"
  source       = var.bundle.path
  content_type = "application/zip"
}
