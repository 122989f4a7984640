"""Transport: signing, the wire format, the durable spool and the shipping client."""
