package logstore

// ConfirmedOffset is Uploader.ConfirmedOffset for the partition prefix: one past the last
// offset of the leading run of its local segments that S3 holds (-1: none). The broker's
// metadata snapshot asks it (broker/s3meta_hook.go).
func (t *TieredStore) ConfirmedOffset(prefix string) (int64, error) {
	return t.uploader(prefix).ConfirmedOffset(prefix)
}
