"""Matrix: matrix-nio, "!" commands, invites from allowed servers."""
