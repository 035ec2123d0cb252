"""What people read: the report header, run reports, Markdown, preview pictures, inspection."""
