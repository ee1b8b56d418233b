"""The local-descriptor index seam: every catalogue photo's keypoint descriptors in one
searchable index, for vote-and-verify retrieval beside the CNN's vector index."""
