// replaced by the real client
