//! The exporters: turn a build result into layers and OCI images, and write them to the
//! image store, OCI or docker archives, local directories or plain tarballs.
