"""Images and files out: encoding, the render cache, archives and session exports."""
