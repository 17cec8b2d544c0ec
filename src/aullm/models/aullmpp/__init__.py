"""aullmpp"""
