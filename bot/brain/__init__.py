"""What runs inside or talks to Rasa: its one HTTP client, the Rasa server wrapper, the tracker store, and the graph components."""
