"""One Pecan RestController per resource, mounted under /api/v1 by pvc_api.app."""
