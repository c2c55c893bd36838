"""German texts of the dashboard, keyed by the English source text (see :mod:`utils.i18n`).

Shop-floor German, short, one term per thing: Auftrag (order), Auftragsnummer, Bild/Bilder, Schwelle (threshold),
Abstand (distance), Kamera, Vorschau, Papierkorb (trash), Archiv (central archive), Version, Werkzeug (tool).
Placeholders (``{name}``) are the same as in the English text; ``tests/test_i18n.py`` checks both.
"""

from __future__ import annotations

import re

GERMAN: dict[str, str] = {
    # ---- navigation, title, the user's own texts' defaults
    "Capture": "Aufnahme",
    "Gallery": "Galerie",
    "Statistics": "Statistik",
    "Editor": "Editor",
    "Web import": "Web-Import",
    "Extract": "Extrahieren",
    "Upload analysis": "Upload-Analyse",
    "Settings": "Einstellungen",
    "Archive": "Archiv",
    "Archive statistics": "Archiv-Statistik",
    "Extract unique images": "Eindeutige Bilder extrahieren",
    "Order number": "Auftragsnummer",
    "Please enter an order number here": "Bitte hier die Auftragsnummer eingeben",
    # ---- login, roles, sidebar
    "Log in": "Anmelden",
    "User name": "Benutzername",
    "Password": "Passwort",
    "Log out": "Abmelden",
    "Logged in as **{name}** ({role})": "Angemeldet als **{name}** ({role})",
    "operator": "Bediener",
    "admin": "Admin",
    "This page is for administrators.": "Diese Seite ist nur für Administratoren.",
    "This action is for administrators.": "Diese Aktion ist nur für Administratoren.",
    "Log in first.": "Bitte zuerst anmelden.",
    "Wrong user name or password.": "Benutzername oder Passwort falsch.",
    "Central archive": "Zentrales Archiv",
    "Files: {url}": "Dateien: {url}",
    "Every station's orders; no camera here (APP_MODE=central).":
        "Aufträge aller Stationen; hier keine Kamera (APP_MODE=central).",
    "Camera": "Kamera",
    "Source: **{kind}**": "Quelle: **{kind}**",
    "Descriptor": "Deskriptor",
    "No descriptor": "Kein Deskriptor",
    "{name}: no pretrained weights, capture works with the fallback.":
        "{name}: keine vortrainierten Gewichte, Aufnahme läuft mit dem Ersatzverfahren.",
    "Details for the engineer": "Details für den Techniker",
    "Put the MobileNetV3 weights file in place (README: Running it on the shop floor, Offline weights).":
        "MobileNetV3-Gewichtsdatei bereitstellen (README: Running it on the shop floor, Offline weights).",
    "Engine": "Aufnahme-Dienst",
    "Running order **{number}** ({mode})": "Laufender Auftrag **{number}** ({mode})",
    "Idle": "Bereit",
    "Recovered at start: {recovery}": "Beim Start wiederhergestellt: {recovery}",
    "Export folder: `{path}`": "Exportordner: `{path}`",
    "Archive: {summary}": "Archiv: {summary}",
    "The disk is nearly full: {free:.0f} % free ({gb:.1f} GB). Tell the engineer (Settings page: disk and "
    "retention).": "Die Festplatte ist fast voll: {free:.0f} % frei ({gb:.1f} GB). Bitte den Techniker "
                   "informieren (Seite Einstellungen: Speicher und Aufbewahrung).",
    # ---- start-up and configuration errors
    "Invalid configuration, fix these environment variables and start again:":
        "Ungültige Konfiguration: diese Umgebungsvariablen korrigieren und neu starten:",
    "**The dashboard cannot start.** {err}": "**Das Dashboard kann nicht starten.** {err}",
    "Fix it, then reload this page. `python -m utils.config` runs the same checks.":
        "Bitte beheben und die Seite neu laden. `python -m utils.config` macht dieselben Prüfungen.",
    "**The central archive cannot be shown.** {err}": "**Das zentrale Archiv kann nicht angezeigt werden.** {err}",
    "Fix it, then reload this page.": "Bitte beheben und die Seite neu laden.",
    "No central archive is set for this station. Set CENTRAL_DATABASE_URL and STORAGE_URL (README: Several "
    "stations, one archive); this station's own orders are in the Gallery.":
        "Für diese Station ist kein zentrales Archiv eingerichtet. CENTRAL_DATABASE_URL und STORAGE_URL setzen "
        "(README: Several stations, one archive); die Aufträge dieser Station stehen in der Galerie.",
    # ---- capture page
    "Start": "Start",
    "Close order": "Auftrag beenden",
    "Read the order number from the camera": "Auftragsnummer mit der Kamera lesen",
    "Hold the order sheet's barcode or QR code under the camera; the number is proposed above.":
        "Barcode oder QR-Code des Auftragsblatts unter die Kamera halten; die Nummer wird oben eingetragen.",
    "Next order": "Nächster Auftrag",
    "Scan the next order's code: this one closes and that one starts":
        "Code des nächsten Auftrags scannen: dieser wird beendet, der nächste startet",
    "Order **{number}** started in `{folder}`.": "Auftrag **{number}** gestartet in `{folder}`.",
    "Order **{number}** closed. {what}": "Auftrag **{number}** beendet. {what}",
    "Scanned “{number}”: {err} The running order goes on.":
        "Gescannt: „{number}“: {err} Der laufende Auftrag läuft weiter.",
    "Video saved ({frames} frames).": "Video gespeichert ({frames} Bilder).",
    "No video frame was recorded.": "Es wurde kein Videobild aufgezeichnet.",
    "{n} image(s) saved.": "{n} Bild(er) gespeichert.",
    "Distinct-image capture is unavailable: {problem}": "Aufnahme eindeutiger Bilder nicht verfügbar: {problem}",
    "Options": "Optionen",
    "Save as": "Speichern als",
    "distinct images": "Eindeutige Bilder",
    "video": "Video",
    "Image resolution": "Bildauflösung",
    "Maximum side of the saved images or video frames in pixels.":
        "Längste Seite der gespeicherten Bilder oder Videobilder in Pixeln.",
    "Images per second": "Bilder pro Sekunde",
    "Threshold to determine distinct images": "Schwelle für eindeutige Bilder",
    "Root mean squared difference between the frames' global features (the original app's decision). A frame is "
    "kept when its smallest distance to every kept image is above this threshold.":
        "Mittlere quadratische Abweichung der globalen Merkmale (Entscheidung der ursprünglichen App). Ein Bild wird "
        "behalten, wenn sein kleinster Abstand zu allen behaltenen Bildern über dieser Schwelle liegt.",
    "How different a settled scene must be from every kept image. Frames are compared region by region; camera "
    "noise and light flicker stay well below 0.15, an item of 1-2 % of the frame put down is above 0.5. Lower keeps "
    "smaller changes, higher only bigger ones.":
        "Wie stark sich eine ruhige Szene von jedem behaltenen Bild unterscheiden muss. Verglichen wird Bereich für "
        "Bereich; Kamerarauschen und Lichtflackern bleiben deutlich unter 0,15, ein abgelegtes Teil von 1-2 % des "
        "Bildes liegt über 0,5. Niedriger behält kleinere Änderungen, höher nur größere.",
    "Save image": "Bild speichern",
    "Keep the next frame whatever its distance.": "Das nächste Bild behalten, egal wie groß sein Abstand ist.",
    "Update images": "Bilder aktualisieren",
    "Re-filter the closed order's images with the current threshold.":
        "Die Bilder des beendeten Auftrags mit der aktuellen Schwelle neu filtern.",
    "\\# Images": "\\# Bilder",
    "Distinct images kept for the order": "Eindeutige Bilder dieses Auftrags",
    "{error} (for {lasted:.0f} s, {count} error(s) in total; retrying)":
        "{error} (seit {lasted:.0f} s, {count} Fehler insgesamt; neuer Versuch läuft)",
    "Waiting for the first frame ...": "Warte auf das erste Bild ...",
    "Distance / threshold": "Abstand / Schwelle",
    "Distance of the latest frame to the nearest kept image; a settled frame farther than the threshold is kept.":
        "Abstand des neuesten Bildes zum nächsten behaltenen Bild; ein ruhiges Bild über der Schwelle wird behalten.",
    "Video frames": "Videobilder",
    "Frames/s": "Bilder/s",
    "{rate:.1f} of {requested:g}": "{rate:.1f} von {requested:g}",
    "achieved of requested (0 while the camera sends nothing)": "erreicht von angefordert (0, solange die Kamera "
                                                                "nichts sendet)",
    "Frames seen": "Bilder gesehen",
    "{n} dropped while processing fell behind": "{n} verworfen, weil die Verarbeitung nicht nachkam",
    "Last kept images (newest first)": "Zuletzt behaltene Bilder (neueste zuerst)",
    "Waiting for the scene to settle (something is moving).": "Warte, bis die Szene ruhig ist (etwas bewegt sich).",
    "Scene settled: kept.": "Szene ruhig: behalten.",
    "Scene settled: the same as a kept image (distance below the threshold).":
        "Szene ruhig: gleich wie ein behaltenes Bild (Abstand unter der Schwelle).",
    "The camera delivers {rate:.1f} of {requested:g} frames/s. Lower the rate, or check the adapter: Continuous "
    "acquisition (not SingleFrame) and TRANSMISSION_TYPE=None give its full speed (README: Cameras).":
        "Die Kamera liefert {rate:.1f} von {requested:g} Bildern/s. Rate senken oder den Adapter prüfen: Continuous "
        "acquisition (nicht SingleFrame) und TRANSMISSION_TYPE=None bringen volle Geschwindigkeit (README: Cameras).",
    "Camera preview": "Kameravorschau",
    "See what the camera sees, to aim it and check the light. Nothing is saved.":
        "Zeigt, was die Kamera sieht, zum Ausrichten und Prüfen des Lichts. Es wird nichts gespeichert.",
    "Camera preview: {problem}": "Kameravorschau: {problem}",
    "Camera preview — nothing is saved": "Kameravorschau – es wird nichts gespeichert",
    "Aim the camera and check the light; type the order number and press Start to capture.":
        "Kamera ausrichten und Licht prüfen; Auftragsnummer eingeben und Start drücken.",
    "Update images at threshold {threshold:.3f}": "Bilder aktualisieren bei Schwelle {threshold:.3f}",
    "All images stay at this threshold.": "Bei dieser Schwelle bleiben alle Bilder.",
    "{n} of {total} image(s) would be moved to the order's trash folder:":
        "{n} von {total} Bild(ern) würden in den Papierkorb des Auftrags verschoben:",
    "Move to trash": "In den Papierkorb",
    "{n} image(s) moved to trash.": "{n} Bild(er) in den Papierkorb verschoben.",
    "Cancel": "Abbrechen",
    "Order {number}": "Auftrag {number}",
    # ---- galleries and image details
    "No images kept for this order.": "Für diesen Auftrag wurden keine Bilder behalten.",
    "No image matches the label search.": "Kein Bild passt zur Label-Suche.",
    "{file}: file missing or unreadable": "{file}: Datei fehlt oder ist nicht lesbar",
    "version of #{src}": "Version von #{src}",
    "imported": "importiert",
    "manual": "manuell",
    "Page (of {pages:,})": "Seite (von {pages:,})",
    "Go to image #": "Gehe zu Bild #",
    "number": "Nummer",
    "Images {first:,}–{last:,} of {total:,}": "Bilder {first:,}–{last:,} von {total:,}",
    " matching the label search": " passend zur Label-Suche",
    "Image #{missing} is not (or no longer) in this order.": "Bild #{missing} ist nicht (mehr) in diesem Auftrag.",
    "Made": "Erstellt",
    "Captured": "Aufgenommen",
    "Imported": "Importiert",
    "Distance": "Abstand",
    " (saved by hand)": " (von Hand gespeichert)",
    "Size": "Größe",
    "File": "Datei",
    "**Copy** in the central archive only (removed from this PC {when})":
        "**Kopie** nur im zentralen Archiv (von diesem PC entfernt {when})",
    "**Archive** sent {when}": "**Archiv** gesendet {when}",
    "Version of": "Version von",
    "an image removed since": "einem inzwischen entfernten Bild",
    "Operation": "Bearbeitung",
    "Tool": "Werkzeug",
    "Source": "Quelle",
    "Labels": "Labels",
    "{n} image(s)": "{n} Bild(er)",
    "running/open": "läuft/offen",
    "imported collection": "importierte Sammlung",
    "This order has no finished video yet.": "Dieser Auftrag hat noch kein fertiges Video.",
    "No video was recorded.": "Es wurde kein Video aufgezeichnet.",
    "Preparing the video for the browser ...": "Video wird für den Browser vorbereitet ...",
    "{name}: {frames} frames at {fps} frames/s": "{name}: {frames} Bilder mit {fps} Bildern/s",
    # ---- backend messages the operator sees (utils/storage.py order numbers, utils/auth.py); whole sentences
    "Order number must be text.": "Die Auftragsnummer muss Text sein.",
    "Please enter an order number.": "Bitte eine Auftragsnummer eingeben.",
    "Order number contains control or invisible characters.":
        "Die Auftragsnummer enthält Steuer- oder unsichtbare Zeichen.",
    "Order number must not contain / or \\ (it names a folder).":
        "Die Auftragsnummer darf kein / oder \\ enthalten (sie benennt einen Ordner).",
    "Order number must not contain '..'.": "Die Auftragsnummer darf kein '..' enthalten.",
    "Use letters, digits and - _ . + # only.": "Nur Buchstaben, Ziffern und - _ . + # verwenden.",
    "Order number contains look-alike characters (e.g. full-width letters or special slashes); type it with plain "
    "characters.": "Die Auftragsnummer enthält ähnlich aussehende Sonderzeichen (z. B. breite Buchstaben oder "
                   "besondere Schrägstriche); bitte mit normalen Zeichen eingeben.",
    "Order number must not contain several spaces in a row.":
        "Die Auftragsnummer darf nicht mehrere Leerzeichen hintereinander enthalten.",
    "Order number must not start with '.' or '-'.": "Die Auftragsnummer darf nicht mit '.' oder '-' beginnen.",
}

# backend messages with values in them (camera errors, order numbers, full disk): pattern -> German text
MESSAGE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Order number is too long \((?P<n>\d+) characters, at most (?P<max>\d+)\)\."),
     "Die Auftragsnummer ist zu lang ({n} Zeichen, höchstens {max})."),
    (re.compile(r"Order number contains characters that are not allowed: (?P<chars>(?:\S )*\S)\."),
     "Die Auftragsnummer enthält unzulässige Zeichen: {chars}."),
    (re.compile(r"'(?P<value>.+)' is a reserved device name on Windows; please add a prefix or suffix\."),
     "'{value}' ist unter Windows ein reservierter Gerätename; bitte etwas voran- oder nachstellen."),
    (re.compile(r"Too many failed attempts\. Try again in (?P<s>\d+) s\."),
     "Zu viele Fehlversuche. In {s} s erneut versuchen."),
    # communication.py: the camera (adapter) does not answer, cannot be reached, refuses the token, fails
    (re.compile(r"(?P<cam>.+?): no answer within CAMERA_TIMEOUT=(?P<s>\S+) s; check that the .+ is reachable and "
                r"not overloaded, or raise CAMERA_TIMEOUT", re.S),
     "{cam}: keine Antwort innerhalb von CAMERA_TIMEOUT={s} s; prüfen, ob die Kamera erreichbar und nicht "
     "überlastet ist, oder CAMERA_TIMEOUT erhöhen"),
    (re.compile(r"(?P<cam>.+?): cannot reach the .+? \((?P<why>.*)\); check that it runs and that (?P<var>\S+) is "
                r"right", re.S),
     "{cam}: Kamera nicht erreichbar ({why}); prüfen, ob sie läuft und {var} stimmt"),
    (re.compile(r"(?P<cam>.+?): .+ requires a token: set CAMERA_TOKEN \((?P<http>HTTP .*)\)", re.S),
     "{cam}: die Kamera verlangt ein Token: CAMERA_TOKEN setzen ({http})"),
    (re.compile(r"(?P<cam>.+?): .+ refused the token: check CAMERA_TOKEN \((?P<http>HTTP .*)\)", re.S),
     "{cam}: die Kamera lehnt das Token ab: CAMERA_TOKEN prüfen ({http})"),
    (re.compile(r"(?P<cam>.+?): HTTP (?P<status>5\d\d) (?P<detail>.*)", re.S),
     "{cam}: Fehler der Kamera (HTTP {status} {detail})"),
    # utils/storage.py: the disk is full or read-only
    (re.compile(r"No space left on device for (?P<where>.+?): (?P<free>\S+) MB free, an image needs (?P<need>\S+) MB "
                r"plus (?P<reserve>\S+) MB reserve\. Free space on the disk \(or change EXPORT_DIR\); capture "
                r"resumes by itself\.", re.S),
     "Kein Speicherplatz mehr auf {where}: {free} MB frei, ein Bild braucht {need} MB plus {reserve} MB Reserve. "
     "Platz auf der Festplatte schaffen (oder EXPORT_DIR ändern); die Aufnahme läuft dann von selbst weiter."),
    (re.compile(r"Cannot write to (?P<where>.+?): Read-only file system\. Make it writable again\.", re.S),
     "Schreiben auf {where} nicht möglich: Dateisystem schreibgeschützt. Wieder beschreibbar machen."),
]

# notes appended to a message: translated on their own
MESSAGE_SUFFIXES: list[tuple[str, str]] = [
    (" (failed again after reconnecting and retrying once)",
     " (nach neuer Verbindung und einem weiteren Versuch erneut fehlgeschlagen)"),
]
