"""The edge: networks, HTTP/1.1 framing and upstream connection pools."""
