"""Rendering for people: terminal tables and the status summary (later: alert text, Slack
blocks, email HTML). Pure: values in, text out."""
