"""One module per Square resource: parse the request, call one engine command, render."""
