"""Blood-flow preview (issue 6): vessel geometry from a segment, reduced and 3D flow models."""
