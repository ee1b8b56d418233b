"""What turns pixels into evidence: image decoding, embedders, local features, verification."""
