"""The GraphQL documents of positions, shared by the API tests and the end-to-end tests."""

from __future__ import annotations

EXIT_FIELDS = """id kind side status amount takeProfitPrice stopPrice stopLimitPrice
  trailPercent trailAmount activationPrice extreme level leg fillPrice reason"""
POSITION_FIELDS = f"""id pair entry status units unitsBought entryPrice cost fees proceeds
  realizedPnl closeReason exits {{ {EXIT_FIELDS} }}
  orders {{ leg side type price amount filled averagePrice status }}"""
ERRORS = "... on PositionErrors { code message errors { code field } }"
OPEN_POSITION = f"""mutation($input: OpenPositionInput!) {{ openPosition(input: $input) {{
  __typename ... on Position {{ {POSITION_FIELDS} }} {ERRORS} }} }}"""
ADOPT_POSITION = f"""mutation($input: AdoptPositionInput!) {{ adoptPosition(input: $input) {{
  __typename ... on Position {{ {POSITION_FIELDS} }} {ERRORS} }} }}"""
PLACE_OCO = f"""mutation($input: PlaceOcoInput!) {{ placeOco(input: $input) {{
  __typename ... on PositionExit {{ {EXIT_FIELDS} }} {ERRORS} }} }}"""
PLACE_TRAILING_STOP = f"""mutation($input: PlaceTrailingStopInput!) {{
  placeTrailingStop(input: $input) {{
  __typename ... on PositionExit {{ {EXIT_FIELDS} }} {ERRORS} }} }}"""
CANCEL_EXIT = f"""mutation($id: ID!) {{ cancelExit(id: $id) {{
  __typename ... on PositionExit {{ {EXIT_FIELDS} }} {ERRORS} }} }}"""
CLOSE_POSITION = f"""mutation($id: ID!) {{ closePosition(id: $id) {{
  __typename ... on Position {{ {POSITION_FIELDS} }} {ERRORS} }} }}"""
POSITIONS = f"""query($status: PositionStatus) {{ positions(status: $status) {{
  edges {{ node {{ {POSITION_FIELDS} }} }} pageInfo {{ hasNextPage }} }} }}"""
POSITION = f"""query($id: ID!) {{ position(id: $id) {{ {POSITION_FIELDS} }} }}"""
