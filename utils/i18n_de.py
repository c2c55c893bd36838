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
    "Started through the HTTP API ({who}); Close order here or through the API.":
        "Über die HTTP-API gestartet ({who}); hier oder über die API beenden.",
    "Events (webhooks and MQTT)": "Ereignisse (Webhooks und MQTT)",
    "No events are sent (set WEBHOOK_URLS or MQTT_URL; see README, Events).":
        "Es werden keine Ereignisse gesendet (WEBHOOK_URLS oder MQTT_URL setzen; siehe README, Events).",
    "Order started, image kept, order closed, camera error and recovered; delivered at least once, in order, per "
    "destination.":
        "Auftrag gestartet, Bild behalten, Auftrag beendet, Kamerafehler und wieder da; mindestens einmal und in "
        "Reihenfolge je Ziel zugestellt.",
    "No process delivers right now.": "Gerade stellt kein Prozess zu.",
    "This dashboard delivers them.": "Dieses Dashboard stellt sie zu.",
    "Another process of this station (the API or another dashboard) delivers them.":
        "Ein anderer Prozess dieser Station (die API oder ein anderes Dashboard) stellt sie zu.",
    "{n} event(s) were refused for good (see the last error); fix the receiver, then send them again.":
        "{n} Ereignis(se) endgültig abgelehnt (siehe letzten Fehler); Empfänger reparieren, dann erneut senden.",
    "Retry the failed events": "Abgelehnte Ereignisse erneut senden",
    # ---- the Camera settings page (pages/camera.py; field labels and sections of utils/camera_params.py)
    'Camera settings': 'Kameraeinstellungen',
    "This page sets the parameters of the BaslerCameraAdapter (CAMERA_ADDRESS). This station's camera is **{kind}**: {name}.":
        'Diese Seite stellt die Parameter des BaslerCameraAdapters ein (CAMERA_ADDRESS). Die Kamera dieser Station ist **{kind}**: {name}.',
    'Adapter': 'Adapter',
    'Ask again': 'Erneut abfragen',
    'Asking the camera adapter ...': 'Frage den Kamera-Adapter ...',
    'Health (/health)': 'Zustand (/health)',
    'Camera (/basler/get-camera-info)': 'Kamera (/basler/get-camera-info)',
    'name': 'Name',
    'Parameters': 'Parameter',
    'saved without a test shot': 'ohne Testbild gespeichert',
    'In use: saved by **{who}** on {when} ({tried}). They replace CAMERA_PARAMS until you reset them.':
        'In Gebrauch: gespeichert von **{who}** am {when} ({tried}). Sie ersetzen CAMERA_PARAMS, bis sie zurückgesetzt werden.',
    'In use: CAMERA_PARAMS from the environment. Saved parameters replace them (also after a restart).':
        'In Gebrauch: CAMERA_PARAMS aus der Umgebung. Gespeicherte Parameter ersetzen sie (auch nach einem Neustart).',
    "Order **{order}** is running: saved parameters apply from the next order (the running one keeps its frame size and colour). A test shot takes its turn between the order's frames.":
        'Auftrag **{order}** läuft: gespeicherte Parameter gelten ab dem nächsten Auftrag (der laufende behält Bildgröße und Farbe). Ein Testbild wird zwischen den Bildern des Auftrags aufgenommen.',
    'Exposure and acquisition': 'Belichtung und Aufnahme',
    'Pixel format and colour': 'Pixelformat und Farbe',
    'Region of interest': 'Bildausschnitt (ROI)',
    'Which camera and how it sends': 'Welche Kamera und wie sie sendet',
    'Exposure time (µs)': 'Belichtungszeit (µs)',
    'Acquisition mode': 'Aufnahmemodus',
    'Grab timeout (ms)': 'Zeitlimit der Aufnahme (ms)',
    'Pixel format': 'Pixelformat',
    'Convert to': 'Umwandeln in',
    'Image format': 'Bildformat',
    'JPEG quality': 'JPEG-Qualität',
    'Rotation (degrees)': 'Drehung (Grad)',
    'Expand to hold the rotated image': 'Vergrößern, damit das gedrehte Bild ganz passt',
    'ROI left': 'ROI links',
    'ROI top': 'ROI oben',
    'ROI right': 'ROI rechts',
    'ROI bottom': 'ROI unten',
    'Serial number': 'Seriennummer',
    'IP address': 'IP-Adresse',
    'Subnet mask': 'Subnetzmaske',
    'Transmission type': 'Übertragungsart',
    'Multicast destination address': 'Multicast-Zieladresse',
    'Multicast destination port': 'Multicast-Zielport',
    '**The adapter would refuse these values.**': '**Der Adapter würde diese Werte ablehnen.**',
    'Test shot': 'Testbild',
    'Takes one picture with these values and shows it; nothing is saved.':
        'Nimmt ein Bild mit diesen Werten auf und zeigt es; nichts wird gespeichert.',
    'Save without a test shot (the camera is absent now)': 'Ohne Testbild speichern (die Kamera fehlt gerade)',
    'For preparing the parameters while the camera is off; the log says so.':
        'Um Parameter vorzubereiten, während die Kamera aus ist; das Protokoll vermerkt es.',
    'Save': 'Speichern',
    'Reset to configuration': 'Auf Konfiguration zurücksetzen',
    'Drops the saved parameters: CAMERA_PARAMS apply again.':
        'Verwirft die gespeicherten Parameter: CAMERA_PARAMS gelten wieder.',
    'Take a test shot with these values before saving them.':
        'Vor dem Speichern ein Testbild mit diesen Werten aufnehmen.',
    'Taking a test shot ...': 'Nehme Testbild auf ...',
    'The parameters were not saved: {error}': 'Die Parameter wurden nicht gespeichert: {error}',
    'Saved.': 'Gespeichert.',
    'The camera uses them now.': 'Die Kamera nutzt sie jetzt.',
    'They apply from the next order.': 'Sie gelten ab dem nächsten Auftrag.',
    'The parameters were not reset: {error}': 'Die Parameter wurden nicht zurückgesetzt: {error}',
    'Reset to CAMERA_PARAMS.': 'Auf CAMERA_PARAMS zurückgesetzt.',
    'Took': 'Dauer',
    'Encoded': 'Kodiert',
    'Pixel format: {format}': 'Pixelformat: {format}',
    'Test shot — nothing is saved': 'Testbild — nichts wird gespeichert',
    'The values were changed since this test shot.': 'Die Werte wurden seit diesem Testbild geändert.',
    '**The test shot failed.** {error}': '**Das Testbild ist fehlgeschlagen.** {error}',
    # the events table (pages/settings.py; keys of utils.events.dispatcher.delivery_overview)
    "destination": "Ziel",
    "waiting": "wartend",
    "delivered": "zugestellt",
    "oldest waiting": "ältestes wartendes",
    "next attempt": "nächster Versuch",
    "last delivered": "zuletzt zugestellt",
    "last error": "letzter Fehler",
    "retrying": "neuer Versuch folgt",
    "not configured any more": "nicht mehr eingestellt",
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
    # ---- the other pages and the statistics plots
    "images": "Bilder",
    "Images per day": "Bilder pro Tag",
    "day (capture time)": "Tag (Aufnahmezeit)",
    "Images per month and running total": "Bilder pro Monat und Summe",
    "month (capture time)": "Monat (Aufnahmezeit)",
    "images per month": "Bilder pro Monat",
    "Images per order": "Bilder pro Auftrag",
    "order": "Auftrag",
    "Objects recognised (best label of each image)": "Erkannte Objekte (bestes Label je Bild)",
    "label": "Label",
    "Brightness (mean luminance, 0..1)": "Helligkeit (mittlere Luminanz, 0..1)",
    "brightness": "Helligkeit",
    "Sharpness (variance of the Laplacian)": "Schärfe (Varianz des Laplace-Filters)",
    "sharpness": "Schärfe",
    "Dominant colours": "Vorherrschende Farben",
    "colour": "Farbe",
    "images per day": "Bilder pro Tag",
    "trend (7-day mean)": "Trend (7-Tage-Mittel)",
    "total so far": "Summe bisher",
    "total images": "Bilder gesamt",
    "Distance to the nearest kept image": "Abstand zum nächsten behaltenen Bild",
    "distance": "Abstand",
    "image(s)": "Bild(er)",
    "The distinct images of a recorded video or a set of images, decided as the live capture decides (a video is a "
    "camera stream: a frame counts once the scene has settled; each image is a scene of its own). The result is an "
    "order like a captured one.":
        "Die eindeutigen Bilder eines aufgezeichneten Videos oder einer Bildserie, entschieden wie bei der "
        "Live-Aufnahme (ein Video ist wie ein Kamerastrom: ein Bild zählt, sobald die Szene ruhig ist; jedes "
        "Einzelbild ist eine eigene Szene). Das Ergebnis ist ein Auftrag wie ein aufgenommener.",
    "One video, or images": "Ein Video oder Bilder",
    "Order {order_number}: {n} image(s) kept of {frames} frame(s)":
        "Auftrag {order_number}: {n} Bild(er) behalten von {frames} Bild(ern)",
    "Distinct-image extraction is unavailable: {descriptor_problem}":
        "Extraktion eindeutiger Bilder nicht verfügbar: {descriptor_problem}",
    "default: the file's name": "Standard: der Dateiname",
    "Skipped {problem}": "Übersprungen: {problem}",
    "The video stopped at frame {stopped_at} of {expected_frames}; the frames read were used.":
        "Das Video endete bei Bild {stopped_at} von {expected_frames}; die gelesenen Bilder wurden verwendet.",
    "Starting ...": "Starte ...",
    "{done} of {value} frame(s), {kept} kept": "{done} von {value} Bild(ern), {kept} behalten",
    "Done: {n} image(s) kept of {frames} frame(s)": "Fertig: {n} Bild(er) behalten von {frames} Bild(ern)",
    "Capture dates": "Aufnahmedatum",
    "Orders": "Aufträge",
    "Images": "Bilder",
    "Capture duration": "Aufnahmedauer",
    "Storage used": "Belegter Speicher",
    "First {value} of {n} image(s); the CSV holds all of them.":
        "Die ersten {value} von {n} Bild(ern); die CSV enthält alle.",
    "Download table (CSV)": "Tabelle herunterladen (CSV)",
    "Download plots and table (ZIP)": "Diagramme und Tabelle herunterladen (ZIP)",
    "No orders yet.": "Noch keine Aufträge.",
    "All orders": "Alle Aufträge",
    "Versions are the results of the image tools (edits, cut-outs, styles); their statistics are computed too.":
        "Versionen sind Ergebnisse der Bildwerkzeuge (Bearbeitungen, Freistellungen, Stile); auch für sie wird die "
        "Statistik berechnet.",
    "Files of the images shown": "Dateien der angezeigten Bilder",
    "Statistics of {pending} image(s) are still being computed in the background.":
        "Die Statistik von {pending} Bild(ern) wird noch im Hintergrund berechnet.",
    "Compute now": "Jetzt berechnen",
    "No image matches the filters.": "Kein Bild passt zu den Filtern.",
    "{n} image(s) could not be read": "{n} Bild(er) nicht lesbar",
    "Computing statistics ...": "Statistik wird berechnet ...",
    "Images from a web page (a supplier catalogue, say) into a collection of their own, each with its source "
    "address. The page's HTML is read for its images (img, srcset, picture, lazy-loaded, og:image, links to image "
    "files). robots.txt is {robots}; at most {n} images and {mb:,.0f} MB a page.":
        "Bilder von einer Webseite (etwa einem Lieferantenkatalog) in eine eigene Sammlung, jedes mit seiner "
        "Quelladresse. Das HTML der Seite wird nach Bildern durchsucht (img, srcset, picture, lazy-loaded, "
        "og:image, Links auf Bilddateien). robots.txt wird {robots}; höchstens {n} Bilder und {mb:,.0f} MB pro "
        "Seite.",
    "{n} image(s) on {netloc}": "{n} Bild(er) auf {netloc}",
    "Collection": "Sammlung",
    "Select all": "Alle auswählen",
    "Select none": "Keine auswählen",
    "Import {n} image(s)": "{n} Bild(er) importieren",
    "Page URL": "Seiten-URL",
    "Find images": "Bilder suchen",
    "The images go into this collection (listed with the orders in the Gallery); importing again into the same "
    "name adds to it, an image already there is skipped.":
        "Die Bilder kommen in diese Sammlung (in der Galerie bei den Aufträgen); ein erneuter Import unter "
        "demselben Namen ergänzt sie, ein vorhandenes Bild wird übersprungen.",
    "Enter the address of a web page (http:// or https://).":
        "Adresse einer Webseite eingeben (http:// oder https://).",
    "{n} image(s) imported into **{value}**. They are in the Gallery (statistics and labels follow in the "
    "background).":
        "{n} Bild(er) importiert in **{value}**. Sie stehen in der Galerie (Statistik und Labels folgen im "
        "Hintergrund).",
    "Open the gallery": "Galerie öffnen",
    "Not imported: {u} — {why}": "Nicht importiert: {u} — {why}",
    "None of the page's images could be fetched.": "Keines der Bilder der Seite konnte geladen werden.",
    "{n} image(s) could not be fetched": "{n} Bild(er) konnten nicht geladen werden",
    "respected": "beachtet",
    "NOT respected (IMPORT_RESPECT_ROBOTS)": "NICHT beachtet (IMPORT_RESPECT_ROBOTS)",
    "Reading the page and fetching its images ...": "Seite wird gelesen und ihre Bilder geladen ...",
    "Collection name: {err}": "Name der Sammlung: {err}",
    "The page cannot be used: {err}": "Die Seite ist nicht verwendbar: {err}",
    "Started between": "Gestartet zwischen",
    "Order": "Auftrag",
    "Download order as ZIP": "Auftrag als ZIP herunterladen",
    "Image": "Bild",
    "No orders yet. Start one on the Capture page.": "Noch keine Aufträge. Auf der Seite Aufnahme einen starten.",
    "No order matches the search.": "Kein Auftrag passt zur Suche.",
    "Folder `{folder}`": "Ordner `{folder}`",
    "Keep this order": "Auftrag behalten",
    "Download this image": "Bild herunterladen",
    "Open in the editor": "Im Editor öffnen",
    "Delete image": "Bild löschen",
    "Yes, delete": "Ja, löschen",
    "Keep it": "Behalten",
    "Re-filter": "Neu filtern",
    "Threshold": "Schwelle",
    "Preview re-filter": "Vorschau neu filtern",
    " — capture running": " — Aufnahme läuft",
    "Search labels": "Labels suchen",
    "Retention never removes an order marked keep.":
        "Die Aufbewahrung entfernt nie einen Auftrag, der als behalten markiert ist.",
    "Download this image (from the archive)": "Bild herunterladen (aus dem Archiv)",
    "Move #{seq} to the order's trash folder?": "#{seq} in den Papierkorb des Auftrags verschieben?",
    "Image #{seq} moved to trash.": "Bild #{seq} in den Papierkorb verschoben.",
    "e.g. carton, bottle (objects recognised in the images)": "z. B. Karton, Flasche (in den Bildern erkannte Objekte)",
    " Its {n} version(s) go with it.": " Seine {n} Version(en) gehen mit.",
    "All {n} image(s) stay at {threshold:.3f}.": "Alle {n} Bild(er) bleiben bei {threshold:.3f}.",
    " and {n:,} more": " und {n:,} weitere",
    "At {threshold:.3f}, {n:,} image(s) would move to trash: {listed}{more}":
        "Bei {threshold:.3f} würden {n:,} Bild(er) in den Papierkorb gehen: {listed}{more}",
    "Move them to trash": "In den Papierkorb verschieben",
    "Search order number": "Auftragsnummer suchen",
    " (version)": " (Version)",
    "Disk and retention": "Speicher und Aufbewahrung",
    "Trash": "Papierkorb",
    "Disk free": "Freier Speicher",
    "Budget": "Budget",
    "Orders in the trash ({n})": "Aufträge im Papierkorb ({n})",
    "Scheduled jobs": "Geplante Aufgaben",
    "Configuration": "Konfiguration",
    "Set by environment variables (see README, Configuration); restart the dashboard to change them.":
        "Gesetzt über Umgebungsvariablen (siehe README, Configuration); zum Ändern das Dashboard neu starten.",
    "Camera: {name}": "Kamera: {name}",
    "Descriptor: {status}": "Deskriptor: {status}",
    "Database: `{where}`": "Datenbank: `{where}`",
    "Recovery at start: {recovery}": "Beim Start wiederhergestellt: {recovery}",
    "Removed for good after TRASH_DAYS={days:g} days.": "Endgültig gelöscht nach TRASH_DAYS={days:g} Tagen.",
    "{free:.1f} of {total:.1f} GB": "{free:.1f} von {total:.1f} GB",
    "none": "keins",
    "; the disk lasts about {days:,.0f} more days at that rate":
        "; bei dieser Rate reicht die Festplatte noch etwa {days:,.0f} Tage",
    "Kept in the last {days} days: {mb:,.1f} MB a day{lasts}.":
        "Behalten in den letzten {days} Tagen: {mb:,.1f} MB pro Tag{lasts}.",
    "None. Retention moves the oldest closed orders here when a budget is exceeded.":
        "Keine. Die Aufbewahrung verschiebt die ältesten beendeten Aufträge hierher, wenn ein Budget überschritten "
        "ist.",
    "**{number}** · {n} image(s) · in the trash since {since}, removed for good after {due}":
        "**{number}** · {n} Bild(er) · im Papierkorb seit {since}, endgültig gelöscht nach {due}",
    "Restore": "Wiederherstellen",
    "JOBS_ENABLED is off in this process.": "JOBS_ENABLED ist in diesem Prozess aus.",
    "No process runs the jobs right now (none holds the lease).":
        "Kein Prozess führt gerade die Aufgaben aus (niemand hält die Sperre).",
    "running": "läuft",
    "not run yet": "noch nicht gelaufen",
    "failed": "fehlgeschlagen",
    "unavailable": "nicht verfügbar",
    "ok": "ok",
    "Run a job now": "Aufgabe jetzt ausführen",
    "Run at the next tick": "Beim nächsten Takt ausführen",
    "This station is on its own (set CENTRAL_DATABASE_URL and STORAGE_URL to sync into a central archive; see "
    "README, Several stations, one archive).":
        "Diese Station arbeitet allein (CENTRAL_DATABASE_URL und STORAGE_URL setzen, um in ein zentrales Archiv zu "
        "synchronisieren; siehe README, Several stations, one archive).",
    "Station": "Station",
    "Images waiting": "Wartende Bilder",
    "Waiting since": "Wartet seit",
    "Last sent": "Zuletzt gesendet",
    "{share:.0%} of the budget used": "{share:.0%} des Budgets belegt",
    "Order {number} restored.": "Auftrag {number} wiederhergestellt.",
    "Jobs run in `{holder}`": "Aufgaben laufen in `{holder}`",
    "{job} failed at {when}: {error}": "{job} fehlgeschlagen um {when}: {error}",
    "The job runs within {s:g} s (in the process holding the lease).":
        "Die Aufgabe läuft innerhalb von {s:g} s (im Prozess, der die Sperre hält).",
    "Files to {url}; rows to the central database. ": "Dateien nach {url}; Zeilen in die zentrale Datenbank. ",
    " Next try in {s:.0f} s.": " Nächster Versuch in {s:.0f} s.",
    "{problem}.{retry} Capture goes on; images wait here and are sent in order.":
        "{problem}.{retry} Die Aufnahme läuft weiter; die Bilder warten hier und werden der Reihe nach gesendet.",
    "{n} change(s) cannot be sent: {error}. Put the file back, then retry them.":
        "{n} Änderung(en) können nicht gesendet werden: {error}. Datei zurücklegen, dann erneut versuchen.",
    "Retry the failed ones": "Fehlgeschlagene erneut versuchen",
    "variable": "Variable",
    "value": "Wert",
    "meaning": "Bedeutung",
    "; and at most {days:g} days (RETENTION_MAX_DAYS)": "; und höchstens {days:g} Tage (RETENTION_MAX_DAYS)",
    " (this dashboard)": " (dieses Dashboard)",
    " (another process: the API or another dashboard)": " (ein anderer Prozess: die API oder ein anderes Dashboard)",
    "job": "Aufgabe",
    "schedule": "Zeitplan",
    "state": "Zustand",
    "last run": "letzter Lauf",
    "took (s)": "Dauer (s)",
    "result": "Ergebnis",
    "next run": "nächster Lauf",
    "runs": "Läufe",
    "failures": "Fehler",
    "This dashboard runs the sync.": "Dieses Dashboard führt die Synchronisierung aus.",
    "Another process of this station (the API or another dashboard) runs the sync.":
        "Ein anderer Prozess dieser Station (die API oder ein anderes Dashboard) führt die Synchronisierung aus.",
    "Statistics of images you upload or link. Nothing is written into the orders.":
        "Statistik von Bildern, die Sie hochladen oder verlinken. In die Aufträge wird nichts geschrieben.",
    "Image URLs (one per line, http:// or https://)": "Bild-URLs (eine pro Zeile, http:// oder https://)",
    "Average colour": "Durchschnittsfarbe",
    "Analyse": "Analysieren",
    "Images analysed": "Bilder analysiert",
    "Failed": "Fehlgeschlagen",
    "With capture time": "Mit Aufnahmezeit",
    "{value} image(s) have no capture time (no EXIF DateTimeOriginal, no Last-Modified) and are left out of the "
    "time series.":
        "{value} Bild(er) haben keine Aufnahmezeit (kein EXIF DateTimeOriginal, kein Last-Modified) und fehlen in "
        "der Zeitreihe.",
    "Upload at least one image or give an image URL.": "Mindestens ein Bild hochladen oder eine Bild-URL angeben.",
    "Analysing {value} image(s) ...": "{value} Bild(er) werden analysiert ...",
    "Every result is kept as a new version beside its source in the gallery; the original is never changed.":
        "Jedes Ergebnis wird als neue Version neben seiner Quelle in der Galerie behalten; das Original bleibt "
        "unverändert.",
    "Choose the image": "Bild wählen",
    "Choose an image from an order, open one from the Gallery, or upload one.":
        "Ein Bild aus einem Auftrag wählen, eines aus der Galerie öffnen oder eines hochladen.",
    "**#{seq}** of **{order_number}** · {value} x {value2} px":
        "**#{seq}** von **{order_number}** · {value} x {value2} px",
    "Edit": "Bearbeiten",
    "Background": "Hintergrund",
    "Style": "Stil",
    "Kept as version #{seq} ({file_name}) in {order_number}.":
        "Als Version #{seq} ({file_name}) in {order_number} behalten.",
    "Crop": "Zuschneiden",
    "Rotate": "Drehen",
    "Straighten (°)": "Geraderichten (°)",
    "Mirror left-right": "Spiegeln links-rechts",
    "Upside down": "Auf den Kopf",
    "Resize (%)": "Größe ändern (%)",
    "Brightness": "Helligkeit",
    "Contrast": "Kontrast",
    "Gamma": "Gamma",
    "Blur (radius)": "Weichzeichnen (Radius)",
    "Sharpen": "Schärfen",
    "Save as a new version": "Als neue Version speichern",
    "How": "Wie",
    "Colour": "Farbe",
    "Cut out and keep as a version": "Freistellen und als Version behalten",
    "Effect": "Effekt",
    "Render at full size and keep": "In voller Größe berechnen und behalten",
    "**Objects with boxes**": "**Objekte mit Rahmen**",
    "Or upload an image": "Oder ein Bild hochladen",
    "That image cannot be edited: {err}": "Dieses Bild kann nicht bearbeitet werden: {err}",
    " · a version": " · eine Version",
    "Drag the box on the image; its corners resize it.":
        "Den Rahmen auf dem Bild ziehen; an den Ecken ändert er seine Größe.",
    "Crop {value} x {value2} px at ({value3}, {value4})": "Zuschnitt {value} x {value2} px bei ({value3}, {value4})",
    "Greyscale": "Graustufen",
    "Sepia": "Sepia",
    "Equalise (CLAHE)": "Ausgleichen (CLAHE)",
    "Edges": "Kanten",
    "Recipe (JSON, for the API and batches)": "Rezept (JSON, für die API und Stapel)",
    "Apply this recipe to every image of {order_number} ({n_images})":
        "Dieses Rezept auf jedes Bild von {order_number} anwenden ({n_images})",
    "Each image gets its own new version; images that fail are listed and the others go on.":
        "Jedes Bild bekommt eine eigene neue Version; fehlgeschlagene Bilder werden aufgelistet, die anderen "
        "laufen weiter.",
    "Apply to the whole order": "Auf den ganzen Auftrag anwenden",
    "No U²-Net model installed: put u2netp.onnx into U2NET_HOME (default ~/.u2net) or set BACKGROUND_MODEL_FILE to "
    "use the learned model.":
        "Kein U²-Net-Modell installiert: u2netp.onnx nach U2NET_HOME (Standard ~/.u2net) legen oder "
        "BACKGROUND_MODEL_FILE setzen, um das gelernte Modell zu nutzen.",
    "A neural style model (fast-neural-style ONNX) is used when STYLE_MODEL_FILE names one.":
        "Ein neuronales Stilmodell (fast-neural-style ONNX) wird verwendet, wenn STYLE_MODEL_FILE eines nennt.",
    "Label now": "Jetzt labeln",
    "Detector: {model_name}": "Detektor: {model_name}",
    "Lowest score": "Niedrigste Bewertung",
    "Keep the image with the boxes as a version": "Bild mit den Rahmen als Version behalten",
    "Find objects": "Objekte suchen",
    "Show it in the gallery": "In der Galerie zeigen",
    "Order or collection": "Auftrag oder Sammlung",
    "Edit the upload": "Upload bearbeiten",
    "Fetching the image from the central archive ...": "Bild wird aus dem zentralen Archiv geladen ...",
    "Rendering at full resolution ...": "Berechnung in voller Auflösung ...",
    "The order is still running: close it first.": "Der Auftrag läuft noch: zuerst beenden.",
    "No other image in this order can serve as the empty station; draw a rectangle instead.":
        "Kein anderes Bild dieses Auftrags taugt als leere Station; stattdessen ein Rechteck zeichnen.",
    "Reference (the station without the object)": "Referenz (die Station ohne das Objekt)",
    "Removing the background ...": "Hintergrund wird entfernt ...",
    "Rendering ...": "Berechnung ...",
    "Labels are not offered: the pretrained MobileNetV3-small weights are not available, and labels from untrained "
    "weights would be noise. {err}":
        "Labels werden nicht angeboten: die vortrainierten MobileNetV3-small-Gewichte fehlen, und Labels aus "
        "untrainierten Gewichten wären Rauschen. {err}",
    "Not labelled yet (the labels job does it in the background, or label it now).":
        "Noch nicht gelabelt (die Label-Aufgabe macht das im Hintergrund, oder jetzt labeln).",
    "Object boxes are not offered: {err}": "Objektrahmen werden nicht angeboten: {err}",
    "Image #": "Bild #",
    "Edit this image": "Dieses Bild bearbeiten",
    "{n} version(s) made.": "{n} Version(en) erstellt.",
    "Method: {ran}": "Verfahren: {ran}",
    "Looking for objects ...": "Suche Objekte ...",
    "No object scores {min_score:.0%} or more; lower the score to see weaker ones.":
        "Kein Objekt mit Bewertung {min_score:.0%} oder mehr; die Bewertung senken, um schwächere zu sehen.",
    "{done} of {total}": "{done} von {total}",
    " Nothing was kept.": " Nichts wurde behalten.",
    "Every station's orders in the central archive (files in {where}).":
        "Aufträge aller Stationen im zentralen Archiv (Dateien in {where}).",
    "Order number contains": "Auftragsnummer enthält",
    "Download order {order_number} (ZIP, all stations)": "Auftrag {order_number} herunterladen (ZIP, alle Stationen)",
    "Images {value}–{value2} of {n}": "Bilder {value}–{value2} von {n}",
    "No images kept for this order (yet).": "Für diesen Auftrag wurden (noch) keine Bilder behalten.",
    "Page (of {pages})": "Seite (von {pages})",
    "**{file_name}** from station **{station}**, captured {captured_at}; {width} x {height} px, {mb:,.2f} MB, MD5 "
    "`{md5}`":
        "**{file_name}** von Station **{station}**, aufgenommen {captured_at}; {width} x {height} px, {mb:,.2f} "
        "MB, MD5 `{md5}`",
    "Download the original": "Original herunterladen",
    "No archived orders match.": "Keine archivierten Aufträge passen.",
    "Nothing in the archive yet: the stations send their orders as they capture them.":
        "Noch nichts im Archiv: die Stationen senden ihre Aufträge während der Aufnahme.",
    "Open": "Öffnen",
    "{caption}: cannot be read from the archive": "{caption}: aus dem Archiv nicht lesbar",
    "Stations": "Stationen",
    "Stored": "Gespeichert",
    "Download the table (CSV)": "Tabelle herunterladen (CSV)",
    "No archived images yet.": "Noch keine archivierten Bilder.",
    "Brightness, sharpness and colours are computed here from the archived files: {n:,} of {n2:,} images so far":
        "Helligkeit, Schärfe und Farben werden hier aus den archivierten Dateien berechnet: bisher {n:,} von "
        "{n2:,} Bildern",
    " (the rest follow).": " (der Rest folgt).",
}

# backend messages with values in them (camera errors, order numbers, full disk): pattern -> German text
MESSAGE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # utils/control/loop.py: another process drives the camera
    (re.compile(r"The camera of this station is driven by another process \((?P<holder>.+)\): use that dashboard, "
                r"or stop it; this one takes over within (?P<s>\d+) s after it stops\.", re.S),
     "Die Kamera dieser Station wird von einem anderen Prozess gesteuert ({holder}): dort arbeiten oder ihn beenden; "
     "dieses Dashboard übernimmt höchstens {s} s danach."),
    (re.compile(r"Order (?P<order>.+) is running on this camera; close it before starting another\.", re.S),
     "Auftrag {order} läuft auf dieser Kamera; erst beenden, dann einen anderen starten."),
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
