// Assembly-level attributes of Linformer.MLNet live here.
