"""au_llm"""
